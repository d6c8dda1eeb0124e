"""The nightly fraud rules flag each cashing-out pattern on data that has it and
not on data just under the threshold; a rerun adds no duplicate; staff review
(dismiss or freeze) is audited and the freeze holds."""

from datetime import timedelta

import coincurve
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from bank import services as bank_services
from bank.errors import BankError
from bank.models import AuditEvent
from tests.factories.voucher import UserFactory, citizen, merchant, wallet_with_tokens
from tests.voucher.admin_support import pay_many, reviewer, run_rules
from voucher import services
from voucher.clock import seoul_today
from voucher.models import FraudFlag, Merchant, Payment, Wallet

# --- rule 1: repeated round sums ---------------------------------------------------------------


def test_three_round_sum_payments_to_one_merchant_in_a_week_are_flagged(db):
    wallet, shop = wallet_with_tokens(100_000), merchant()
    pay_many(wallet, shop, [10_000, 20_000, 30_000])
    [flag] = run_rules()
    assert (flag.rule, flag.wallet, flag.merchant) == ("round_sum_payments", wallet, shop)
    assert flag.evidence["payments"] == 3 and flag.evidence["total"] == 60_000
    assert flag.status == "open" and flag.period_end == seoul_today()


@pytest.mark.parametrize(
    "amounts",
    [
        [10_000, 20_000],  # only two
        [10_000, 20_000, 15_000],  # the third is not round
        [9_000, 20_000, 30_000],  # under the unit
    ],
)
def test_fewer_than_three_round_sums_are_not_flagged(db, amounts):
    pay_many(wallet_with_tokens(100_000), merchant(), amounts)
    assert run_rules() == []


def test_round_sums_spread_over_two_merchants_are_not_flagged(db):
    wallet, first, second = wallet_with_tokens(100_000), merchant(), merchant()
    pay_many(wallet, first, [10_000, 20_000])
    pay_many(wallet, second, [10_000])
    assert run_rules() == []


def test_round_sums_older_than_the_week_are_not_counted(db):
    wallet, shop = wallet_with_tokens(100_000), merchant()
    old = pay_many(wallet, shop, [10_000])[0]
    Payment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))  # as if paid last week
    pay_many(wallet, shop, [10_000, 20_000])
    assert run_rules() == []


# --- rule 2: pay-and-cancel churn -------------------------------------------------------------


def test_three_payments_refunded_in_full_within_a_day_are_flagged(db):
    wallet, shop = wallet_with_tokens(100_000), merchant()
    for payment in pay_many(wallet, shop, [12_345, 23_456, 34_567]):
        services.refund_payment(payment=payment, amount=payment.amount, idempotency_key=f"r-{payment.pk}")
    [flag] = run_rules()
    assert (flag.rule, flag.wallet, flag.merchant) == ("quick_full_refunds", wallet, shop)
    assert flag.evidence["payments_refunded_in_full"] == 3 and flag.evidence["total"] == 12_345 + 23_456 + 34_567


def test_two_quick_full_refunds_and_a_partial_one_are_not_churn(db):
    wallet, shop = wallet_with_tokens(100_000), merchant()
    first, second, third = pay_many(wallet, shop, [12_345, 23_456, 34_567])
    services.refund_payment(payment=first, amount=first.amount, idempotency_key="r1")
    services.refund_payment(payment=second, amount=second.amount, idempotency_key="r2")
    services.refund_payment(payment=third, amount=third.amount - 1, idempotency_key="r3")  # not in full
    assert run_rules() == []


def test_two_quick_full_refunds_and_a_late_one_are_not_churn(db):
    wallet, shop = wallet_with_tokens(100_000), merchant()
    first, second, third = pay_many(wallet, shop, [12_345, 23_456, 34_567])
    services.refund_payment(payment=first, amount=first.amount, idempotency_key="r1")
    services.refund_payment(payment=second, amount=second.amount, idempotency_key="r2")
    # the third is refunded in full, but 25 hours after it was paid
    Payment.objects.filter(pk=third.pk).update(created_at=timezone.now() - timedelta(hours=25))
    services.refund_payment(payment=third, amount=third.amount, idempotency_key="r3")
    assert run_rules() == []


# --- rule 3: takings far above the revenue tier -------------------------------------------------


def test_takings_annualised_over_twice_the_declared_revenue_are_flagged(db, settings):
    settings.FRAUD_RULES = {**settings.FRAUD_RULES, "takings_min": 100_000}
    # 30 days of takings x 365/30 > 2 x revenue  <=>  takings > revenue x 60 / 365
    shop = merchant(annual_revenue=3_650_000)  # ceiling for 30 days: 600,000
    wallet = wallet_with_tokens(1_000_000)
    pay_many(wallet, shop, [300_001, 300_000])  # 600,001 won: just over
    [flag] = [f for f in run_rules() if f.rule == "takings_above_revenue"]
    assert flag.merchant == shop and flag.wallet is None
    assert flag.evidence["takings"] == 600_001 and flag.evidence["annual_revenue"] == 3_650_000


def test_takings_at_twice_the_declared_revenue_are_not_flagged(db, settings):
    settings.FRAUD_RULES = {**settings.FRAUD_RULES, "takings_min": 100_000}
    shop = merchant(annual_revenue=3_650_000)
    pay_many(wallet_with_tokens(1_000_000), shop, [300_000, 299_999, 1])  # exactly 600,000
    assert [f for f in run_rules() if f.rule == "takings_above_revenue"] == []


def test_refunded_takings_do_not_count(db, settings):
    settings.FRAUD_RULES = {**settings.FRAUD_RULES, "takings_min": 100_000}
    shop = merchant(annual_revenue=3_650_000)
    [payment] = pay_many(wallet_with_tokens(1_000_000), shop, [700_001])
    services.refund_payment(payment=payment, amount=100_001, idempotency_key="r")
    assert [f for f in run_rules() if f.rule == "takings_above_revenue"] == []


# --- rule 4: one device key on many wallets ---------------------------------------------------


def register_same_key_on(wallets, secret=b"\x07" * 32):
    public = coincurve.PrivateKey(secret).public_key.format()
    for wallet in wallets:
        bank_services.register_device_key(party=wallet.owner, public_key=public, label="phone")
    return public.hex()


def test_one_device_key_on_three_wallets_is_flagged(db):
    wallets = [citizen() for _ in range(3)]
    public_key = register_same_key_on(wallets)
    register_same_key_on([citizen()], secret=b"\x08" * 32)  # someone else's own phone
    [flag] = run_rules()
    assert (flag.rule, flag.device_public_key) == ("shared_device_key", public_key)
    assert flag.evidence == {"wallets": 3, "wallet_ids": sorted(w.pk for w in wallets)}


def test_one_device_key_on_two_wallets_is_not_flagged(db):
    register_same_key_on([citizen(), citizen()])
    assert run_rules() == []


# --- idempotency and review -----------------------------------------------------------------------


def test_running_the_rules_twice_files_no_duplicate(db):
    pay_many(wallet_with_tokens(100_000), merchant(), [10_000, 20_000, 30_000])
    register_same_key_on([citizen() for _ in range(3)])
    first = run_rules()
    assert len(first) == 2
    assert run_rules() == first
    # and the next night, with the pattern still inside the week, the open flag is not filed again
    services.flag_fraud_patterns(day=seoul_today() + timedelta(days=1))
    assert FraudFlag.objects.count() == 2


def test_dismissing_a_flag_needs_a_reason_and_is_audited(db, client):
    pay_many(wallet_with_tokens(100_000), merchant(), [10_000, 20_000, 30_000])
    [flag] = run_rules()
    staff = reviewer()
    client.force_login(staff)
    url = reverse("admin:voucher_fraudflag_review", args=[flag.pk])
    # when: no reason
    client.post(url, {"decision": "dismiss", "reason": " "})
    flag.refresh_from_db()
    assert flag.status == "open"
    # when: with a reason
    response = client.post(url, {"decision": "dismiss", "reason": "school canteen: fixed meal prices"})
    # then
    flag.refresh_from_db()
    assert response.status_code == 302
    assert (flag.status, flag.reviewed_by, flag.review_reason) == (
        "dismissed",
        staff,
        "school canteen: fixed meal prices",
    )
    event = AuditEvent.objects.get(action="fraud_flag.dismissed")
    assert (event.actor, event.target_id, event.after) == (staff, str(flag.pk), {"status": "dismissed"})
    assert Wallet.objects.get(pk=flag.wallet_id).status == "active"


def test_freezing_from_a_flag_freezes_wallet_and_merchant_and_stops_payments(db, client):
    wallet, shop = wallet_with_tokens(100_000), merchant()
    pay_many(wallet, shop, [10_000, 20_000, 30_000])
    [flag] = run_rules()
    client.force_login(reviewer())
    page = client.get(reverse("admin:voucher_fraudflag_change", args=[flag.pk])).content.decode()
    assert "Freeze subject" in page and "repeated round-sum payments" in page
    # when
    client.post(
        reverse("admin:voucher_fraudflag_review", args=[flag.pk]), {"decision": "freeze", "reason": "court referral"}
    )
    # then
    flag.refresh_from_db()
    assert flag.status == "actioned"
    assert Wallet.objects.get(pk=wallet.pk).status == "frozen"
    assert Merchant.objects.get(pk=shop.pk).status == "frozen"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"fraud_flag.actioned", "wallet.frozen", "merchant.frozen"} <= actions
    with pytest.raises(BankError) as refused:
        services.pay(wallet=wallet, merchant=merchant(), amount=1_000, idempotency_key="after-freeze")
    assert refused.value.code == "wallet_frozen"


def test_freezing_a_shared_device_flag_freezes_every_wallet_on_the_key(db):
    wallets = [citizen() for _ in range(3)]
    register_same_key_on(wallets)
    [flag] = run_rules()
    services.freeze_fraud_flag_subject(actor=reviewer(), flag=flag, reason="one phone, three wallets")
    assert set(Wallet.objects.filter(pk__in=[w.pk for w in wallets]).values_list("status", flat=True)) == {"frozen"}


def test_a_flag_is_reviewed_once(db):
    pay_many(wallet_with_tokens(100_000), merchant(), [10_000, 20_000, 30_000])
    [flag] = run_rules()
    services.dismiss_fraud_flag(actor=reviewer(), flag=flag, reason="checked")
    with pytest.raises(BankError) as refused:
        services.freeze_fraud_flag_subject(actor=reviewer("second"), flag=flag, reason="too late")
    assert refused.value.code == "fraud_flag_already_reviewed"
    assert Wallet.objects.get(pk=flag.wallet_id).status == "active"


def test_staff_who_may_only_view_flags_cannot_review_them_even_by_a_crafted_post(db, client):
    pay_many(wallet_with_tokens(100_000), merchant(), [10_000, 20_000, 30_000])
    [flag] = run_rules()
    viewer = UserFactory(username="auditor", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_fraudflag"))
    client.force_login(viewer)
    assert (
        "Freeze subject" not in client.get(reverse("admin:voucher_fraudflag_change", args=[flag.pk])).content.decode()
    )
    url = reverse("admin:voucher_fraudflag_review", args=[flag.pk])
    assert client.post(url, {"decision": "freeze", "reason": "x"}).status_code == 403
    flag.refresh_from_db()
    assert flag.status == "open" and not AuditEvent.objects.filter(action__startswith="fraud_flag").exists()


def test_the_nightly_task_is_scheduled_after_two_in_seoul(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["flag-fraud-patterns"]
    assert entry["task"] == "voucher.tasks.flag_fraud_patterns"
    assert entry["schedule"].hour == {2} and entry["schedule"].minute == {30}
    assert settings.CELERY_TIMEZONE == "Asia/Seoul"
