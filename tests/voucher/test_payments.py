from datetime import date

import pytest

from bank import errors as bank_errors
from bank.models import Account, Posting
from bank.services import set_account_status
from tests.factories.voucher import citizen, grant_lot, merchant, program, staff, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import errors, services
from voucher.models import Lot, Merchant, Payment, VoucherProgram, WalletLimitRule
from voucher.selectors import benefits_this_month, lots_of, spendable_at, wallet_balance

TIERS_2026 = [(1_000_000_000, 1000), (3_000_000_000, 800)]


def test_payment_spends_soonest_expiring_eligible_lots_first_in_one_entry(db):
    # given paid-in tokens (5 years) and two grants expiring in 30 and 90 days
    wallet = wallet_with_tokens(10_000)
    soon = grant_lot(wallet, 10_000, valid_days=30)
    later = grant_lot(wallet, 10_000, valid_days=90)
    shop = merchant()
    # when
    payment = services.pay(wallet=wallet, merchant=shop, amount=25_000, idempotency_key="p1", reference="order-1")
    # then
    balances = {lot.program_id: lot.balance for lot in Lot.objects.select_related("account").filter(wallet=wallet)}
    assert balances == {soon.pk: 0, later.pk: 0, None: 5_000}
    assert [(row.lot.program_id, row.amount) for row in payment.lots.select_related("lot")] == [
        (soon.pk, 10_000),
        (later.pk, 10_000),
        (None, 5_000),
    ]
    assert Posting.objects.filter(entry=payment.entry).count() == 4
    assert natural(shop.token_account) == 25_000
    assert payment.entry.reference == "order-1"
    assert_ledger_ok()


def test_lots_not_eligible_at_the_merchant_are_left_alone(db):
    wallet = wallet_with_tokens(5_000)
    grant_lot(wallet, 10_000, valid_days=30, eligible_districts=["yeongdo"])
    department_store = merchant(category="department_store", annual_revenue=900_000_000_000)
    # the grant (excluded at large stores, bound to Yeongdo-gu) is not spendable here
    assert spendable_at(wallet, department_store).total == 5_000
    services.pay(wallet=wallet, merchant=department_store, amount=5_000, idempotency_key="p1")
    before = ledger_size()
    with pytest.raises(errors.InsufficientEligibleBalance) as refused:
        services.pay(wallet=wallet, merchant=department_store, amount=1, idempotency_key="p2")
    assert refused.value.code == "insufficient_eligible_balance"
    assert refused.value.details == {"available": 0, "requested": 1}
    assert ledger_size() == before
    # but it is at an eligible shop in Yeongdo-gu
    services.pay(wallet=wallet, merchant=merchant(district="yeongdo"), amount=10_000, idempotency_key="p3")
    assert wallet_balance(wallet) == 0


def test_a_revenue_ceiling_limits_where_a_grant_is_spent(db):
    wallet = citizen()
    grant_lot(wallet, 10_000, max_merchant_annual_revenue=1_000_000_000)
    assert spendable_at(wallet, merchant(annual_revenue=1_000_000_000)).total == 10_000
    assert spendable_at(wallet, merchant(annual_revenue=1_000_000_001)).total == 0


def _frozen_wallet():
    wallet = wallet_with_tokens(10_000)
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="cashing-out pattern")
    return wallet, merchant()


def _frozen_merchant():
    shop = merchant()
    services.set_merchant_status(actor=staff("officer"), merchant=shop, status="frozen", reason="fake registration")
    return wallet_with_tokens(10_000), shop


def _insufficient():
    return wallet_with_tokens(999), merchant()


def _over_payment_limit():
    WalletLimitRule.objects.create(
        effective_from=date(2020, 1, 1),
        named_max_balance=2_000_000,
        anonymous_max_balance=500_000,
        per_payment_limit=999,
        daily_payment_limit=100_000,
        redeem_min_used_percent=60,
        plain_lot_valid_days=1825,
    )
    return wallet_with_tokens(10_000), merchant()


def _over_daily_limit():
    WalletLimitRule.objects.create(
        effective_from=date(2020, 1, 1),
        named_max_balance=2_000_000,
        anonymous_max_balance=500_000,
        per_payment_limit=100_000,
        daily_payment_limit=1_500,
        redeem_min_used_percent=60,
        plain_lot_valid_days=1825,
    )
    wallet, shop = wallet_with_tokens(10_000), merchant()
    services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="earlier-today")
    return wallet, shop


@pytest.mark.parametrize(
    "arrange, code",
    [
        (_frozen_wallet, "wallet_frozen"),
        (_frozen_merchant, "merchant_frozen"),
        (_insufficient, "insufficient_eligible_balance"),
        (_over_payment_limit, "over_payment_limit"),
        (_over_daily_limit, "over_daily_limit"),
    ],
)
def test_every_refused_payment_writes_no_ledger_row(db, arrange, code):
    wallet, shop = arrange()
    before, payments = ledger_size(), Payment.objects.count()
    with pytest.raises(errors.VoucherError) as refused:
        services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="refused")
    assert refused.value.code == code
    assert ledger_size() == before and Payment.objects.count() == payments


def test_a_merchant_frozen_in_the_ledger_only_is_still_refused_under_lock(db):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    set_account_status(actor=None, account=shop.token_account, status=Account.Status.FROZEN, reason="race")
    before = ledger_size()
    with pytest.raises(errors.MerchantFrozen):
        services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p")
    assert ledger_size() == before


def test_a_retried_payment_returns_the_first_and_a_changed_one_conflicts(db):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    first = services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p")
    assert services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p") == first
    with pytest.raises(bank_errors.IdempotencyConflict):
        services.pay(wallet=wallet, merchant=shop, amount=2_000, idempotency_key="p")
    assert wallet_balance(wallet) == 9_000


def test_paying_a_merchant_that_does_not_exist_is_refused_before_anything_else(db):
    # given a wallet whose earlier payment under the same key would otherwise be replayed
    wallet, shop = wallet_with_tokens(10_000), merchant()
    services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p")
    before = ledger_size()
    # when the merchant named by id does not exist
    with pytest.raises(errors.MerchantNotFound):
        services.pay(wallet=wallet, merchant=Merchant(pk=shop.pk + 1000), amount=1_000, idempotency_key="p")
    # then nothing was written
    assert ledger_size() == before and Payment.objects.count() == 1


def test_a_merchant_given_by_id_only_is_paid_like_a_loaded_one(db):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    payment = services.pay(wallet=wallet, merchant=Merchant(pk=shop.pk), amount=2_500, idempotency_key="p")
    assert (payment.merchant.name, payment.amount) == (shop.name, 2_500)
    assert natural(shop.token_account) == 2_500 and wallet_balance(wallet) == 7_500
    assert [(row.lot_id, row.amount) for row in Payment.objects.get().lots.all()] == [
        (row.lot_id, row.amount) for row in payment.lots.all()
    ]


def _cashback_program(**fields):
    return program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        rules=[{"effective_from": date(2026, 1, 1), "monthly_base_limit": 500_000, "tiers": TIERS_2026}],
        **fields,
    )


@pytest.mark.parametrize(
    "category, revenue, cashback",
    [
        ("restaurant", 900_000_000, 10_000),
        ("cafe", 2_500_000_000, 8_000),
        ("grocery", 3_000_000_001, 0),
        ("department_store", 500_000_000, 0),
    ],
)
def test_cashback_follows_the_merchants_revenue_tier(db, category, revenue, cashback):
    _cashback_program()
    wallet = wallet_with_tokens(100_000)
    payment = services.pay(
        wallet=wallet, merchant=merchant(category=category, annual_revenue=revenue), amount=100_000, idempotency_key="p"
    )
    assert payment.cashback_amount == cashback
    assert wallet_balance(wallet) == cashback
    assert_ledger_ok()


def test_an_active_cashback_program_that_does_not_cover_the_merchant_pays_no_cashback(db):
    # given cashback for grocers only
    _cashback_program(eligible_categories=["grocery"])
    wallet = wallet_with_tokens(100_000)
    # when paying at a restaurant
    payment = services.pay(wallet=wallet, merchant=merchant(category="restaurant"), amount=40_000, idempotency_key="p")
    # then the payment goes through, without cashback
    assert payment.cashback_amount == 0
    assert wallet_balance(wallet) == 60_000
    assert_ledger_ok()


def test_cashback_counts_only_500000_won_of_spending_a_month(db):
    cashback = _cashback_program()
    wallet, shop = wallet_with_tokens(700_000), merchant()
    first = services.pay(wallet=wallet, merchant=shop, amount=400_000, idempotency_key="a")
    second = services.pay(wallet=wallet, merchant=shop, amount=200_000, idempotency_key="b")
    assert (first.cashback_amount, second.cashback_amount) == (40_000, 10_000)
    assert benefits_this_month(wallet, cashback)["base_left"] == 0


def test_cashback_is_earned_on_paid_in_money_only(db):
    _cashback_program()
    wallet = citizen()
    grant_lot(wallet, 50_000)
    payment = services.pay(wallet=wallet, merchant=merchant(), amount=50_000, idempotency_key="p")
    assert payment.cashback_amount == 0


def test_merchants_pay_suppliers_with_the_tokens_they_hold(db):
    shop, supplier = merchant(), merchant(category="wholesale")
    services.pay(wallet=wallet_with_tokens(10_000), merchant=shop, amount=10_000, idempotency_key="p")
    services.pay_merchant(payer=shop, payee=supplier, amount=7_000, idempotency_key="invoice-1")
    assert (natural(shop.token_account), natural(supplier.token_account)) == (3_000, 7_000)
    before = ledger_size()
    with pytest.raises(errors.InsufficientEligibleBalance):
        services.pay_merchant(payer=shop, payee=supplier, amount=3_001, idempotency_key="invoice-2")
    services.set_merchant_status(actor=staff("officer"), merchant=supplier, status="frozen", reason="audit")
    with pytest.raises(errors.MerchantFrozen):
        services.pay_merchant(payer=shop, payee=supplier, amount=1, idempotency_key="invoice-3")
    assert ledger_size() == before
    assert_ledger_ok()


def test_lots_of_shows_the_breakdown(db):
    wallet = wallet_with_tokens(1_000)
    relief = grant_lot(wallet, 2_000, valid_days=30)
    assert [(lot.program, lot.balance) for lot in lots_of(wallet)] == [(relief, 2_000), (None, 1_000)]
