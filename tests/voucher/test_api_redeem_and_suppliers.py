"""Cash-out of a wallet and merchants paying suppliers, through the wallet API, with their refusals."""

import pytest

from tests.factories.api import citizen_app, merchant_app
from tests.factories.voucher import grant_lot, staff
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import services
from voucher.models import MerchantPayment, Redemption
from voucher.selectors import wallet_balance

REDEEM = "/api/v1/wallet/redemptions/"
SUPPLIERS = "/api/v1/merchant/supplier-payments/"


def _spend(app, amount: int) -> None:
    shop = merchant_app()
    services.pay(wallet=app.wallet, merchant=shop.merchant, amount=amount, idempotency_key=f"spend-{amount}")


def test_a_citizen_cashes_out_the_unused_paid_in_tokens_once_60_percent_is_used(db):
    app = citizen_app(100_000)
    _spend(app, 60_000)
    deposit_before = natural(app.wallet.deposit_account)
    response = app.post(REDEEM, {}, key="cash-out-1")
    assert response.status_code == 201, response.content
    assert (response.json()["amount"], response.json()["paid_in"]) == (40_000, 100_000)
    assert wallet_balance(app.wallet) == 0
    assert natural(app.wallet.deposit_account) == deposit_before + 40_000
    retry = app.post(REDEEM, {}, key="cash-out-1")
    assert retry.content == response.content
    assert Redemption.objects.count() == 1
    assert_ledger_ok()


def test_a_cash_out_never_takes_a_grant(db):
    app = citizen_app(10_000)
    grant_lot(app.wallet, 50_000)
    _spend(app, 58_000)  # the grant first (it expires sooner), then 8,000 of the paid-in tokens
    response = app.post(REDEEM, {})
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == 2_000


@pytest.mark.parametrize(
    ("spent", "frozen", "status", "code"),
    [
        (59_000, False, 409, "redemption_not_allowed"),
        (100_000, False, 409, "redemption_not_allowed"),  # nothing left to cash out
        (60_000, True, 403, "wallet_frozen"),
    ],
)
def test_a_refused_cash_out_answers_its_code_and_writes_nothing(db, spent, frozen, status, code):
    app = citizen_app(100_000)
    _spend(app, spent)
    if frozen:
        services.set_wallet_status(actor=staff("o"), wallet=app.wallet, status="frozen", reason="lost card")
    before = ledger_size()
    response = app.post(REDEEM, {})
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert ledger_size() == before


def _merchant_holding(tokens: int, *, role: str = "owner"):
    till = merchant_app(role=role)
    customer = citizen_app(tokens)
    services.pay(wallet=customer.wallet, merchant=till.merchant, amount=tokens, idempotency_key="sale")
    return till


def test_a_merchant_owner_pays_a_supplier_with_the_tokens_it_holds(db):
    shop, supplier = _merchant_holding(50_000), merchant_app(category="wholesale")
    response = shop.post(SUPPLIERS, {"payee": supplier.merchant.pk, "amount": 30_000, "reference": "fish 11-23"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["payer"]["id"], body["payee"]["id"], body["amount"]) == (
        shop.merchant.pk,
        supplier.merchant.pk,
        30_000,
    )
    assert natural(shop.merchant.token_account) == 20_000
    assert natural(supplier.merchant.token_account) == 30_000
    # both sides see it in their list; a third merchant does not
    assert shop.get(SUPPLIERS).json()["results"][0]["id"] == body["id"]
    assert supplier.get(SUPPLIERS).json()["results"][0]["reference"] == "fish 11-23"
    assert merchant_app().get(SUPPLIERS).json()["results"] == []
    assert_ledger_ok()


def test_a_supplier_payment_retried_with_its_key_pays_once(db):
    shop, supplier = _merchant_holding(50_000), merchant_app()
    first = shop.post(SUPPLIERS, {"payee": supplier.merchant.pk, "amount": 10_000}, key="order-7")
    again = shop.post(SUPPLIERS, {"payee": supplier.merchant.pk, "amount": 10_000}, key="order-7")
    assert again.content == first.content
    other = shop.post(SUPPLIERS, {"payee": supplier.merchant.pk, "amount": 9_000}, key="order-7")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_key_reused")
    assert MerchantPayment.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("more_than_held", 409, "insufficient_eligible_balance"),
        ("clerk", 403, "permission_denied"),
        ("itself", 400, "invalid_request"),
        ("unknown_payee", 404, "not_found"),
        ("frozen_payee", 403, "merchant_frozen"),
        ("zero", 400, "invalid_request"),
    ],
)
def test_a_refused_supplier_payment_answers_its_code_and_writes_nothing(db, case, status, code):
    shop = _merchant_holding(50_000, role="clerk" if case == "clerk" else "owner")
    supplier = merchant_app()
    payee, amount = supplier.merchant.pk, 10_000
    if case == "more_than_held":
        amount = 50_001
    elif case == "itself":
        payee = shop.merchant.pk
    elif case == "unknown_payee":
        payee = 10**12
    elif case == "frozen_payee":
        services.set_merchant_status(actor=staff("o"), merchant=supplier.merchant, status="frozen", reason="x")
    elif case == "zero":
        amount = 0
    before = ledger_size()
    response = shop.post(SUPPLIERS, {"payee": payee, "amount": amount})
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert ledger_size() == before
