"""voucher.services.wallet_holds: authorise, capture whole or part as a Payment, void, expire."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from bank import errors as bank_errors
from bank.models import Account, AuditEvent, Hold
from bank.roles import grant_role
from bank.services import expire_holds, set_payments_paused
from tests.factories.api import citizen_app
from tests.factories.voucher import citizen, grant_lot, merchant, staff, wallet_with_tokens
from tests.voucher.settlement_support import paid_on, times_settled, yesterday
from tests.voucher.support import after_days, assert_ledger_ok, natural
from voucher import errors, services, tasks
from voucher.models import Lot, Payment, PaymentLot, Wallet, WalletHold, WalletLimitRule
from voucher.selectors import wallet_balance
from voucher.wallet_holds_read import held_on, open_holds_of

pytestmark = pytest.mark.django_db


def _in(**delta):
    return timezone.now() + timedelta(**delta)


def _authorize(wallet, shop, amount, key="h1", **fields):
    return services.authorize_hold(
        wallet=wallet,
        merchant=shop,
        amount=amount,
        idempotency_key=key,
        expires_at=fields.pop("expires_at", _in(hours=2)),
        **fields,
    )


def _available(lot: Lot) -> int:
    lot.account.refresh_from_db()
    return lot.account.available


def _wallet_with_grant_and_paid(paid=10_000, granted=3_000, **grant_fields):
    """A wallet with `paid` paid-in won (valid 5 years) and a `granted` grant lot (valid 30 days)."""
    wallet = wallet_with_tokens(paid)
    grant_lot(wallet, granted, valid_days=grant_fields.pop("valid_days", 30), **grant_fields)
    grant = Lot.objects.get(wallet=wallet, program__isnull=False)
    paid_lot = Lot.objects.get(wallet=wallet, program=None)
    return wallet, grant, paid_lot


def _make_past_due(hold: WalletHold) -> None:
    """Move the hold's expiry (and its bank holds') into the past: time passing, without a sleep."""
    past = timezone.now() - timedelta(seconds=1)
    WalletHold.objects.filter(pk=hold.pk).update(expires_at=past)
    Hold.objects.filter(wallet_hold_lot__hold=hold).update(expires_at=past)


def _limits_of_5_000_a_payment_and_8_000_a_day() -> None:
    WalletLimitRule.objects.create(
        effective_from=date(2020, 1, 1),
        named_max_balance=2_000_000,
        anonymous_max_balance=500_000,
        per_payment_limit=5_000,
        daily_payment_limit=8_000,
        redeem_min_used_percent=60,
        plain_lot_valid_days=1825,
    )


def _pauser():
    return grant_role(staff("incident-desk"), "pauser")


# --- authorise -----------------------------------------------------------------------------------


def test_a_hold_reserves_the_soonest_expiring_eligible_lots_and_lowers_what_may_be_spent():
    wallet, grant, paid_lot = _wallet_with_grant_and_paid()
    shop = merchant()
    hold = _authorize(wallet, shop, 5_000)
    # the grant expires first, so it is reserved first
    assert [(row.lot_id, row.amount) for row in hold.lots.all()] == [(grant.pk, 3_000), (paid_lot.pk, 2_000)]
    assert {row.bank_hold.status for row in hold.lots.all()} == {Hold.Status.OPEN}
    assert (_available(grant), _available(paid_lot)) == (0, 8_000)
    # nothing moved: the wallet still holds everything, but only 8,000 may be spent
    assert wallet_balance(wallet) == 13_000 and natural(shop.token_account) == 0
    assert held_on(wallet) == 5_000 and list(open_holds_of(wallet)) == [hold]
    with pytest.raises(errors.InsufficientEligibleBalance):
        services.pay(wallet=wallet, merchant=shop, amount=8_001, idempotency_key="p1")
    services.pay(wallet=wallet, merchant=shop, amount=8_000, idempotency_key="p2")
    assert_ledger_ok()


def test_a_lot_that_would_expire_while_held_is_not_reserved():
    wallet, grant, paid_lot = _wallet_with_grant_and_paid(valid_days=2)
    hold = _authorize(wallet, merchant(), 4_000, expires_at=_in(days=5))
    assert [(row.lot_id, row.amount) for row in hold.lots.all()] == [(paid_lot.pk, 4_000)]
    assert _available(grant) == 3_000


def test_lots_not_eligible_at_the_merchant_are_not_reserved():
    wallet, grant, paid_lot = _wallet_with_grant_and_paid(eligible_categories=["fish_market"])
    with pytest.raises(errors.InsufficientEligibleBalance) as caught:
        _authorize(wallet, merchant(category="cafe"), 11_000)
    assert caught.value.details == {"available": 10_000, "requested": 11_000}
    assert not WalletHold.objects.exists() and not Hold.objects.exists()


def test_retrying_an_authorisation_returns_the_first_hold_and_other_terms_conflict():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    expires_at = _in(hours=3)
    first = _authorize(wallet, shop, 4_000, expires_at=expires_at)
    assert _authorize(wallet, shop, 4_000, expires_at=expires_at) == first
    with pytest.raises(bank_errors.IdempotencyConflict):
        _authorize(wallet, shop, 4_001, expires_at=expires_at)
    assert WalletHold.objects.count() == 1 and held_on(wallet) == 4_000


@pytest.mark.parametrize(
    "expires_at",
    [
        lambda: timezone.now() - timedelta(seconds=1),
        lambda: timezone.now().replace(tzinfo=None) + timedelta(hours=1),
        lambda: timezone.now() + timedelta(days=32),
        lambda: date.today(),
    ],
    ids=["past", "naive", "too-far", "a-date"],
)
def test_a_hold_must_expire_in_the_future_within_the_longest_reservation(expires_at):
    with pytest.raises(errors.InvalidRequest) as caught:
        _authorize(wallet_with_tokens(1_000), merchant(), 500, expires_at=expires_at())
    assert caught.value.details["field"] == "expires_at"


def test_authorisation_checks_what_a_payment_checks():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    with pytest.raises(errors.MerchantNotFound):
        _authorize(wallet, type(shop)(pk=10**9), 1_000)
    officer = staff("officer")
    services.set_merchant_status(actor=officer, merchant=shop, status="frozen", reason="audit")
    with pytest.raises(errors.MerchantFrozen):
        _authorize(wallet, shop, 1_000)
    other = merchant()
    services.set_wallet_status(actor=officer, wallet=wallet, status=Wallet.Status.FROZEN, reason="audit")
    with pytest.raises(errors.WalletFrozen):
        _authorize(wallet, other, 1_000)
    set_payments_paused(actor=_pauser(), paused=True, reason="incident 42")
    with pytest.raises(bank_errors.PaymentsPaused):
        _authorize(wallet_with_tokens(1_000), other, 1_000)
    assert not WalletHold.objects.exists()


def test_the_per_payment_limit_applies_at_authorisation_and_open_holds_count_against_the_day():
    _limits_of_5_000_a_payment_and_8_000_a_day()
    wallet, shop = wallet_with_tokens(20_000), merchant()
    with pytest.raises(errors.OverPaymentLimit):
        _authorize(wallet, shop, 5_001)
    services.pay(wallet=wallet, merchant=shop, amount=2_000, idempotency_key="p")
    _authorize(wallet, shop, 5_000, key="h1")
    with pytest.raises(errors.OverDailyLimit) as caught:
        _authorize(wallet, shop, 1_001, key="h2")
    assert caught.value.details["spent_today"] == 7_000
    voided = _authorize(wallet, shop, 1_000, key="h3")
    services.void_hold(hold=voided)  # a released hold no longer counts
    _authorize(wallet, shop, 1_000, key="h4")


@pytest.mark.parametrize("capture", [False, True], ids=["open", "captured"])
def test_a_payment_counts_the_days_open_holds_against_its_daily_limit(capture):
    # given a daily limit of 8,000 won and a hold of 5,000 authorised today
    _limits_of_5_000_a_payment_and_8_000_a_day()
    wallet, shop = wallet_with_tokens(20_000), merchant()
    hold = _authorize(wallet, shop, 5_000)
    if capture:  # open or captured, the 5,000 won are committed today exactly once
        services.capture_hold(hold=hold, idempotency_key="c1")
    # when the holder pays 3,001 won more, then it is over the limit, and nothing is written
    payments = Payment.objects.count()
    with pytest.raises(errors.OverDailyLimit) as caught:
        services.pay(wallet=wallet, merchant=shop, amount=3_001, idempotency_key="p1")
    assert caught.value.details["spent_today"] == 5_000 and Payment.objects.count() == payments
    # and 3,000 won fit
    services.pay(wallet=wallet, merchant=shop, amount=3_000, idempotency_key="p2")


# --- capture -------------------------------------------------------------------------------------


def test_capturing_a_hold_whole_is_a_payment_with_its_lots_and_one_ledger_entry():
    wallet, grant, paid_lot = _wallet_with_grant_and_paid()
    shop = merchant()
    hold = _authorize(wallet, shop, 5_000, reference="tour pass 72h")
    payment = services.capture_hold(hold=hold, idempotency_key="c1")
    assert (payment.wallet_id, payment.merchant_id, payment.amount, payment.reference) == (
        wallet.pk,
        shop.pk,
        5_000,
        "tour pass 72h",
    )
    assert payment.entry.kind == "voucher_payment"
    assert [(row.lot_id, row.amount) for row in PaymentLot.objects.filter(payment=payment)] == [
        (grant.pk, 3_000),
        (paid_lot.pk, 2_000),
    ]
    hold.refresh_from_db()
    assert (hold.status, hold.captured_amount, hold.payment_id) == ("captured", 5_000, payment.pk)
    assert [(h.status, h.captured_amount) for h in Hold.objects.order_by("pk")] == [
        ("captured", 3_000),
        ("captured", 2_000),
    ]
    assert wallet_balance(wallet) == 8_000 and natural(shop.token_account) == 5_000
    assert (_available(grant), _available(paid_lot)) == (0, 8_000) and held_on(wallet) == 0
    assert_ledger_ok()


def test_a_partial_capture_takes_the_lots_in_spend_order_and_releases_the_rest():
    wallet, grant, paid_lot = _wallet_with_grant_and_paid()
    shop = merchant()
    hold = _authorize(wallet, shop, 5_000)
    payment = services.capture_hold(hold=hold, amount=2_500, idempotency_key="c1")
    assert [(row.lot_id, row.amount) for row in payment.lots.all()] == [(grant.pk, 2_500)]
    assert [(h.status, h.captured_amount) for h in Hold.objects.order_by("pk")] == [
        ("captured", 2_500),
        ("voided", 0),  # nothing was taken from the paid-in lot's reservation
    ]
    assert (_available(grant), _available(paid_lot)) == (500, 10_000)
    assert wallet_balance(wallet) == 10_500 and natural(shop.token_account) == 2_500
    assert_ledger_ok()


def test_a_capture_retried_returns_its_payment_and_a_second_capture_is_refused():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    hold = _authorize(wallet, shop, 5_000)
    payment = services.capture_hold(hold=hold, amount=4_000, idempotency_key="c1")
    assert services.capture_hold(hold=hold, amount=4_000, idempotency_key="c1") == payment
    with pytest.raises(bank_errors.IdempotencyConflict):
        services.capture_hold(hold=hold, idempotency_key="c1")  # the whole 5,000 this time
    with pytest.raises(bank_errors.HoldNotOpen):
        services.capture_hold(hold=hold, amount=1_000, idempotency_key="c2")
    with pytest.raises(bank_errors.CaptureExceedsHold):
        services.capture_hold(hold=_authorize(wallet, shop, 1_000, key="h2"), amount=1_001, idempotency_key="c3")
    assert Payment.objects.count() == 1 and wallet_balance(wallet) == 6_000
    assert_ledger_ok()


def test_a_capture_is_refused_while_paused_or_frozen_and_the_hold_stays_open():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    hold = _authorize(wallet, shop, 5_000)
    pauser = _pauser()
    set_payments_paused(actor=pauser, paused=True, reason="incident 42")
    with pytest.raises(bank_errors.PaymentsPaused):
        services.capture_hold(hold=hold, idempotency_key="c1")
    set_payments_paused(actor=pauser, paused=False, reason="incident 42 over")
    officer = staff("officer")
    services.set_merchant_status(actor=officer, merchant=shop, status="frozen", reason="audit")
    with pytest.raises(errors.MerchantFrozen):
        services.capture_hold(hold=hold, idempotency_key="c1")
    services.set_wallet_status(actor=officer, wallet=wallet, status=Wallet.Status.FROZEN, reason="audit")
    with pytest.raises(errors.WalletFrozen):
        services.capture_hold(hold=hold, idempotency_key="c1")
    hold.refresh_from_db()
    assert hold.status == "open" and held_on(wallet) == 5_000 and not Payment.objects.exists()
    assert_ledger_ok()


def test_a_captured_hold_is_refunded_like_any_payment():
    wallet, grant, paid_lot = _wallet_with_grant_and_paid()
    shop = merchant()
    payment = services.capture_hold(hold=_authorize(wallet, shop, 5_000), idempotency_key="c1")
    services.refund_payment(payment=payment, amount=5_000, idempotency_key="r1")
    assert (_available(grant), _available(paid_lot)) == (3_000, 10_000)
    assert natural(shop.token_account) == 0
    assert_ledger_ok()


def test_settlement_pays_a_captured_hold_once():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    payment = services.capture_hold(hold=_authorize(wallet, shop, 7_000), idempotency_key="c1")
    paid_on(yesterday(), payment)
    batch = services.settle_day(day=yesterday())
    line = shop.settlement_lines.get(batch=batch)
    assert (line.status, line.gross, line.payment_count) == ("paid", 7_000, 1)
    assert times_settled(payment) == 1
    services.settle_day(day=yesterday())  # a re-run pays no one twice
    assert times_settled(payment) == 1 and natural(shop.token_account) == 0
    assert_ledger_ok()


def test_authorising_capturing_and_voiding_by_a_person_are_audited():
    wallet, shop, operator = wallet_with_tokens(10_000), merchant(), staff("tour-desk")
    captured = _authorize(wallet, shop, 2_000, key="h1", acting_user=operator)
    services.capture_hold(hold=captured, idempotency_key="c1", acting_user=operator)
    voided = _authorize(wallet, shop, 1_000, key="h2")
    services.void_hold(hold=voided, acting_user=operator, reason="pass refunded unused")
    assert captured.authorized_by == operator
    actions = AuditEvent.objects.filter(target_type="WalletHold").order_by("pk")
    assert [(e.action, e.target_id, e.actor_id) for e in actions] == [
        ("wallet_hold.authorize", str(captured.pk), operator.pk),
        ("wallet_hold.capture", str(captured.pk), operator.pk),
        ("wallet_hold.void", str(voided.pk), operator.pk),
    ]


# --- void and expiry -----------------------------------------------------------------------------


def test_voiding_a_hold_releases_it_and_voiding_again_changes_nothing():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    hold = _authorize(wallet, shop, 6_000)
    assert services.void_hold(hold=hold).status == "voided"
    assert services.void_hold(hold=hold).status == "voided"
    assert held_on(wallet) == 0 and Hold.objects.get().status == "voided"
    with pytest.raises(bank_errors.HoldNotOpen):
        services.capture_hold(hold=hold, idempotency_key="c1")
    services.pay(wallet=wallet, merchant=shop, amount=10_000, idempotency_key="p")
    assert_ledger_ok()


def test_a_hold_past_its_expiry_cannot_be_captured_and_the_sweep_releases_it():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    hold = _authorize(wallet, shop, 6_000)
    kept = _authorize(wallet, shop, 1_000, key="h2", expires_at=_in(days=1))
    _make_past_due(hold)
    with pytest.raises(bank_errors.HoldExpired):  # before the sweep ran, too
        services.capture_hold(hold=hold, idempotency_key="c1")
    assert tasks.expire_wallet_holds.delay().get() == 1
    assert services.expire_wallet_holds() == 0  # a second run finds nothing
    hold.refresh_from_db()
    assert hold.status == "expired" and held_on(wallet) == 1_000
    assert [h.status for h in Hold.objects.order_by("pk")] == ["expired", "open"]
    with pytest.raises(bank_errors.HoldExpired):
        services.void_hold(hold=hold)
    assert services.capture_hold(hold=kept, idempotency_key="c2").amount == 1_000
    assert_ledger_ok()


def test_the_sweep_closes_a_hold_whose_bank_holds_the_ledger_expired_first():
    wallet, shop = wallet_with_tokens(10_000), merchant()
    hold = _authorize(wallet, shop, 6_000)
    _make_past_due(hold)
    assert expire_holds() == 1
    assert services.expire_wallet_holds() == 1
    hold.refresh_from_db()
    assert hold.status == "expired" and Account.objects.filter(on_hold__gt=0).count() == 0
    assert_ledger_ok()


def test_expiring_lots_releases_the_holds_on_them_first():
    wallet = citizen()
    grant_lot(wallet, 3_000, valid_days=1)
    shop = merchant()
    hold = _authorize(wallet, shop, 2_000, expires_at=_in(hours=20))
    result = services.expire_lots(now=after_days(5))
    assert (result.lots, result.amount) == (1, 3_000)
    hold.refresh_from_db()
    assert hold.status == "expired" and wallet_balance(wallet) == 0
    assert_ledger_ok()


def test_the_wallet_api_shows_what_open_holds_reserve():
    app = citizen_app(10_000)
    hold = _authorize(app.wallet, merchant(), 4_000)
    shown = app.get("/api/v1/wallet/").json()
    assert (shown["balance"], shown["held"]) == (10_000, 4_000)
    services.void_hold(hold=hold)
    assert app.get("/api/v1/wallet/").json()["held"] == 0
