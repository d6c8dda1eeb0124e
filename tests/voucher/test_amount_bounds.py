"""Every amount a page or the API takes is bounded to what a ledger line may carry
(bank.models.MAX_AMOUNT): 10**30 won is a form error or a 400, never a 500, and
writes nothing; an in-range amount still goes through (issue 13)."""

from datetime import date

import pytest
from django.urls import reverse

from bank import errors as bank_errors
from bank import services as bank_services
from bank.models import MAX_AMOUNT, ApprovalRequest, MinterAllowance
from bank.roles import grant_role
from tests.factories.api import citizen_app
from tests.factories.voucher import citizen, city_budget, staff
from tests.voucher.portal_support import other, owner_client, shop  # noqa: F401  the portal's fixtures
from tests.voucher.support import ledger_size
from voucher import services
from voucher.models import PaymentRequest, Refund, VoucherProgram, WalletLimitRule

HUGE = 10**30
TOO_MUCH = [str(HUGE), str(MAX_AMOUNT + 1)]


def _login(client, role: str):
    user = grant_role(staff(f"{role}-bounds"), role)
    client.force_login(user)
    return user


def _program_form(funder, **changes):
    return {
        "code": "relief-2027",
        "name": "Relief 2027",
        "kind": "grant",
        "funder_account": funder.pk,
        "face_value": "100000",
        "budget": "5000000",
        "valid_days": "90",
        "eligible_categories": "[]",
        "excluded_categories": "[]",
        "eligible_districts": "[]",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
        **changes,
    }


@pytest.mark.parametrize("field", ["budget", "face_value", "per_person_monthly_cap", "per_person_total_cap"])
def test_a_program_amount_beyond_the_bound_is_a_form_error(client, db, field):
    _login(client, "program_manager")
    funder = city_budget(5_000_000)
    add = reverse("admin:voucher_voucherprogram_add")
    for amount in TOO_MUCH:
        page = client.post(add, _program_form(funder, **{field: amount}))
        assert page.status_code == 200 and page.context["adminform"].form.errors, amount
        assert not VoucherProgram.objects.exists()
    assert client.post(add, _program_form(funder, **{field: str(MAX_AMOUNT)})).status_code == 302
    assert getattr(VoucherProgram.objects.get(), field) == MAX_AMOUNT


def test_a_revenue_ceiling_is_bounded_to_what_the_database_holds(client, db):
    _login(client, "program_manager")
    add = reverse("admin:voucher_voucherprogram_add")
    page = client.post(add, _program_form(city_budget(5_000_000), max_merchant_annual_revenue=str(HUGE)))
    assert page.status_code == 200 and page.context["adminform"].form.errors
    assert not VoucherProgram.objects.exists()


def test_wallet_limits_beyond_the_bound_are_form_errors(admin_client, db):
    add = reverse("admin:voucher_walletlimitrule_add")
    data = {
        "effective_from": "2027-01-01",
        "named_max_balance": "2000000",
        "anonymous_max_balance": "500000",
        "per_payment_limit": "1000000",
        "daily_payment_limit": "2000000",
        "redeem_min_used_percent": "60",
        "plain_lot_valid_days": "1825",
    }
    before = WalletLimitRule.objects.count()
    for field in ("named_max_balance", "anonymous_max_balance", "per_payment_limit", "daily_payment_limit"):
        page = admin_client.post(add, {**data, field: str(HUGE)})
        assert page.status_code == 200 and field in page.context["adminform"].form.errors
    assert admin_client.post(add, {**data, "plain_lot_valid_days": str(HUGE)}).status_code == 200
    assert WalletLimitRule.objects.count() == before
    assert admin_client.post(add, data).status_code == 302
    assert WalletLimitRule.objects.filter(effective_from=date(2027, 1, 1)).exists()


def test_an_allowance_raise_beyond_the_bound_is_a_form_error(client, db):
    _login(client, "approver")  # the approver role files allowance raises
    row = MinterAllowance.objects.create(minter="staff_issuance", allowance=0)
    url = reverse("admin:bank_minterallowance_changelist")
    base = {"action": "request_raise", "_selected_action": [row.pk], "apply": "1", "reason": "budget 2027"}
    for amount in TOO_MUCH:
        page = client.post(url, {**base, "amount": amount})
        assert page.status_code == 200 and "amount" in page.context["form"].errors
    assert not ApprovalRequest.objects.exists()
    assert client.post(url, {**base, "amount": "1000000"}).status_code == 302
    assert ApprovalRequest.objects.get().payload["amount"] == 1_000_000


def test_the_portals_refund_and_qr_forms_refuse_an_amount_beyond_the_bound(owner_client, shop):  # noqa: F811
    refund = reverse("portal:refund", args=[shop.payment.pk])
    before = ledger_size()
    for amount in TOO_MUCH:
        page = owner_client.post(refund, {"amount": amount, "key": "portal:" + "e" * 32, "confirm": "1"})
        assert page.status_code == 400, amount
        assert owner_client.post(reverse("portal:qr"), {"amount": amount}).status_code == 400
    assert ledger_size() == before and not Refund.objects.exists()
    assert not PaymentRequest.objects.filter(merchant=shop.merchant).exists()
    assert owner_client.post(reverse("portal:qr"), {"amount": "15000"}).status_code == 302


@pytest.mark.parametrize("path", ["/api/v1/wallet/top-ups/", "/api/v1/wallet/transfers/"])
def test_the_api_refuses_an_amount_beyond_the_bound(db, path):
    app, receiver = citizen_app(10_000), citizen(0)
    before = ledger_size()
    response = app.post(path, {"amount": HUGE, "to_wallet": receiver.pk})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert ledger_size() == before


def test_the_services_refuse_an_out_of_range_amount_with_invalid_amount(db):
    wallet = citizen(krw=10_000)
    for call in (
        lambda: bank_services.post_entry(lines=[(wallet.deposit_account, HUGE), (city_budget(0), -HUGE)], kind="test"),
        lambda: services.top_up(wallet=wallet, amount=HUGE, idempotency_key="huge"),
        lambda: bank_services.use_minter_allowance(minter="staff_issuance", amount=HUGE),
    ):
        before = ledger_size()
        with pytest.raises(bank_errors.BankError) as refused:
            call()
        assert refused.value.code == "invalid_amount"
        assert ledger_size() == before
