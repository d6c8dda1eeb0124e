"""Every rule of a payment holds alike whether a cashback program is active or
not (the case that once took another code path), on every database: the order
of the checks, their codes, the spend order, replays, and the audit row."""

from datetime import date

import pytest

from bank import errors as bank_errors
from bank.models import Account, AuditEvent
from bank.roles import grant_role
from bank.services import set_account_status, set_payments_paused
from tests.factories.voucher import citizen, grant_lot, merchant, program, staff, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, ledger_size, natural
from voucher import errors, services
from voucher.models import Benefit, Merchant, Payment, VoucherProgram, WalletLimitRule
from voucher.selectors import spendable_at, wallet_balance

# 10% cashback at a merchant of up to 1 billion won a year (the factory's default 500 million)
TIERS = [(1_000_000_000, 1000)]


@pytest.fixture(params=["no cashback program", "cashback elsewhere", "cashback here"])
def cashback(request, db):
    """None, or the active cashback program: one that pays only at grocers
    (not at the restaurants these tests pay), or one that pays here."""
    if request.param == "no cashback program":
        return None
    fields = {"eligible_categories": ["grocery"]} if request.param == "cashback elsewhere" else {}
    return program(
        kind=VoucherProgram.Kind.CASHBACK,
        valid_days=1825,
        rules=[{"effective_from": date(2026, 1, 1), "tiers": TIERS}],
        **fields,
    )


def _pays_here(cashback) -> bool:
    return cashback is not None and not cashback.eligible_categories


def _limits(**changes):
    values = {
        "named_max_balance": 2_000_000,
        "anonymous_max_balance": 500_000,
        "per_payment_limit": 1_000_000,
        "daily_payment_limit": 2_000_000,
        "redeem_min_used_percent": 60,
        "plain_lot_valid_days": 1825,
        **changes,
    }
    WalletLimitRule.objects.create(effective_from=date(2020, 1, 1), **values)


def _pause():
    set_payments_paused(actor=grant_role(staff("incident-desk"), "pauser"), paused=True, reason="incident 42")


def _freeze_wallet(wallet):
    services.set_wallet_status(actor=staff("officer"), wallet=wallet, status="frozen", reason="cashing out")


def _freeze_merchant(shop):
    services.set_merchant_status(actor=staff("officer"), merchant=shop, status="frozen", reason="fake shop")


def test_a_payment_spends_soonest_expiring_lots_first_with_or_without_cashback(cashback):
    # given paid-in tokens (5 years) and two grants expiring in 30 and 90 days
    wallet, shop = wallet_with_tokens(10_000), merchant()
    soon = grant_lot(wallet, 10_000, valid_days=30)
    later = grant_lot(wallet, 10_000, valid_days=90)
    # when
    payment = services.pay(wallet=wallet, merchant=shop, amount=25_000, idempotency_key="p1", reference="order-1")
    # then the same split, in memory and in the database
    split = [(soon.pk, 10_000), (later.pk, 10_000), (None, 5_000)]
    assert [(row.lot.program_id, row.amount) for row in payment.lots.all()] == split
    stored = Payment.objects.get()
    assert [(row.lot.program_id, row.amount, row.spend_order) for row in stored.lots.order_by("spend_order")] == [
        (program_id, amount, order) for order, (program_id, amount) in enumerate(split)
    ]
    # cashback on the paid-in part only, when a program pays here
    earned = 500 if _pays_here(cashback) else 0
    assert (payment.cashback_amount, stored.cashback_amount) == (earned, earned)
    assert Benefit.objects.filter(payment=stored).count() == (1 if earned else 0)
    assert wallet_balance(wallet) == 5_000 + earned
    assert natural(shop.token_account) == 25_000
    assert (stored.reference, stored.entry.reference) == ("order-1", "order-1")
    assert_ledger_ok()


def test_a_replay_answers_with_the_first_payment_even_while_paused(cashback):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    first = services.pay(wallet=wallet, merchant=shop, amount=4_000, idempotency_key="p", reference="r")
    _pause()
    before = ledger_size()
    again = services.pay(wallet=wallet, merchant=shop, amount=4_000, idempotency_key="p", reference="r")
    assert again.pk == first.pk and again.cashback_amount == first.cashback_amount
    with pytest.raises(bank_errors.IdempotencyConflict) as changed:
        services.pay(wallet=wallet, merchant=shop, amount=4_001, idempotency_key="p", reference="r")
    assert changed.value.code == "idempotency_conflict"
    assert (ledger_size(), Payment.objects.count()) == (before, 1)


def _paused(wallet, shop):
    _pause()


def _wallet_frozen(wallet, shop):
    _freeze_wallet(wallet)


def _merchant_frozen(wallet, shop):
    _freeze_merchant(shop)


def _merchant_account_frozen(wallet, shop):
    # only the merchant's ledger account: the posting service refuses, reported as the merchant's refusal
    set_account_status(actor=None, account=shop.token_account, status=Account.Status.FROZEN, reason="race")


def _per_payment_limit(wallet, shop):
    _limits(per_payment_limit=999)


def _daily_limit(wallet, shop):
    _limits(daily_payment_limit=1_500)
    services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="earlier-today")


def _daily_limit_reached(wallet, shop):
    _limits(daily_payment_limit=sum(Payment.objects.filter(wallet=wallet).values_list("amount", flat=True)))


def _nothing_eligible(wallet, shop):
    services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="spent-it-all")
    earned = spendable_at(wallet, shop).total  # the cashback it earned, when a program pays here
    if earned:
        services.pay(wallet=wallet, merchant=shop, amount=earned, idempotency_key="spent-the-cashback")
    grant_lot(wallet, 50_000, eligible_districts=["gijang"])  # not spendable in Haeundae-gu


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        (_paused, "payments_paused"),
        (_wallet_frozen, "wallet_frozen"),
        (_merchant_frozen, "merchant_frozen"),
        (_merchant_account_frozen, "merchant_frozen"),
        (_per_payment_limit, "over_payment_limit"),
        (_daily_limit, "over_daily_limit"),
        (_nothing_eligible, "insufficient_eligible_balance"),
    ],
)
def test_each_refusal_has_its_code_and_writes_nothing_with_or_without_cashback(cashback, arrange, code):
    # given
    wallet, shop = wallet_with_tokens(10_000), merchant()
    arrange(wallet, shop)
    before = (ledger_size(), Payment.objects.count(), Benefit.objects.count(), AuditEvent.objects.count())
    # when
    with pytest.raises(bank_errors.BankError) as refused:
        services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p", acting_user=staff("holder"))
    # then
    assert refused.value.code == code
    after = (ledger_size(), Payment.objects.count(), Benefit.objects.count(), AuditEvent.objects.count())
    assert after == before
    assert_ledger_ok()


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        # pause before the wallet, the wallet before the merchant, the merchant before the
        # limits, the limits before the eligible balance
        ((_paused, _wallet_frozen, _merchant_frozen), "payments_paused"),
        ((_wallet_frozen, _merchant_frozen, _per_payment_limit), "wallet_frozen"),
        ((_merchant_frozen, _per_payment_limit), "merchant_frozen"),
        ((_nothing_eligible, _per_payment_limit), "over_payment_limit"),
        ((_nothing_eligible, _daily_limit_reached), "over_daily_limit"),
    ],
)
def test_the_checks_run_in_one_order_with_or_without_cashback(cashback, arrange, code):
    wallet, shop = wallet_with_tokens(10_000), merchant()
    for step in arrange:  # those that pay first, before a pause or a freeze refuses them
        step(wallet, shop)
    with pytest.raises(bank_errors.BankError) as refused:
        services.pay(wallet=wallet, merchant=shop, amount=1_000, idempotency_key="p")
    assert refused.value.code == code


def test_an_unknown_merchant_or_wallet_is_refused_first(cashback):
    wallet = wallet_with_tokens(10_000)
    _pause()
    with pytest.raises(errors.MerchantNotFound):
        services.pay(wallet=wallet, merchant=Merchant(pk=10**9), amount=1_000, idempotency_key="p")
    wallet.pk = 10**9
    with pytest.raises(errors.InvalidRequest) as refused:
        services.pay(wallet=wallet, merchant=merchant(), amount=1_000, idempotency_key="p")
    assert refused.value.details["field"] == "wallet"


def test_a_payment_by_a_person_names_them_in_the_audit_log_once(cashback):
    # given
    wallet, shop = wallet_with_tokens(10_000), merchant()
    holder = staff("holder")
    # when paying, and replaying the same payment
    payment = services.pay(wallet=wallet, merchant=shop, amount=3_000, idempotency_key="p", acting_user=holder)
    services.pay(wallet=wallet, merchant=shop, amount=3_000, idempotency_key="p", acting_user=holder)
    # then one audit row names the payer and the payment
    [event] = AuditEvent.objects.filter(action="payment.create")
    assert (event.actor, event.actor_label, event.target_type, event.target_id) == (
        holder,
        "holder",
        "Payment",
        str(payment.pk),
    )
    assert event.after == {"wallet": wallet.pk, "merchant": shop.pk, "amount": 3_000, "entry": payment.entry_id}


def test_a_payment_by_a_system_caller_writes_no_audit_row(cashback):
    wallet = wallet_with_tokens(10_000)
    services.pay(wallet=wallet, merchant=merchant(), amount=3_000, idempotency_key="p")
    assert not AuditEvent.objects.filter(action="payment.create").exists()


@pytest.mark.parametrize("who", ["anonymous", "unsaved", "a name"])
def test_an_acting_user_that_is_not_a_user_is_refused(db, who):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    acting = {"anonymous": AnonymousUser(), "unsaved": get_user_model()(username="x"), "a name": "alice"}[who]
    wallet = citizen()
    with pytest.raises(errors.InvalidRequest) as refused:
        services.pay(wallet=wallet, merchant=merchant(), amount=1, idempotency_key="p", acting_user=acting)
    assert refused.value.details["field"] == "acting_user"
