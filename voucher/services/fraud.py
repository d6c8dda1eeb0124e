"""Fraud flags: the nightly rules that look for voucher cashing-out ("kkang", 깡:
turning subsidised or purpose-bound tokens into cash through a cooperating
merchant) and staff's review of what they find. Rules only read the money
records and write FraudFlag rows; a freeze goes through set_wallet_status /
set_merchant_status, so it is audited like any other.

Every rule is one set-based query (GROUP BY ... HAVING) over a window that
ends on `day` (a Seoul day). Thresholds are in settings.FRAUD_RULES.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Mod
from django.utils import timezone

from bank.models import DeviceKey
from bank.services import record_audit
from bank.services.controls import require_role
from voucher import errors
from voucher.clock import day_bounds, seoul_today
from voucher.models import FraudFlag, Merchant, Payment, Refund, Wallet
from voucher.services.merchants import get_merchant, set_merchant_status
from voucher.services.wallets import set_wallet_status

REVIEW_PERMISSION = "voucher.review_fraudflag"


@dataclass(frozen=True)
class Finding:
    rule: str
    subject: str
    period_start: date
    evidence: dict
    score: int
    wallet_id: int | None = None
    merchant_id: int | None = None
    device_public_key: str = ""


def flag_fraud_patterns(*, day: date | None = None) -> list[FraudFlag]:
    """Run every rule over the window ending on `day` (default: yesterday in
    Seoul) and file a flag for each new finding. Safe to run twice, or on two
    workers at once: a subject already flagged by the same rule in an
    overlapping window, or still open, is not flagged again, and the unique
    (rule, subject, period_end) constraint settles a race."""
    day = day or seoul_today() - timedelta(days=1)
    findings = [
        *_round_sum_payments(day),
        *_quick_full_refunds(day),
        *_takings_above_revenue(day),
        *_shared_device_keys(day),
    ]
    return [flag for finding in findings if (flag := _file(finding, day)) is not None]


def _file(finding: Finding, day: date) -> FraudFlag | None:
    known = FraudFlag.objects.filter(rule=finding.rule, subject=finding.subject).filter(
        Q(period_end__gte=finding.period_start) | Q(status=FraudFlag.Status.OPEN)
    )
    if known.exists():
        return None
    try:
        with transaction.atomic():
            return FraudFlag.objects.create(
                rule=finding.rule,
                subject=finding.subject,
                wallet_id=finding.wallet_id,
                merchant_id=finding.merchant_id,
                device_public_key=finding.device_public_key,
                period_start=finding.period_start,
                period_end=day,
                evidence=finding.evidence,
                score=finding.score,
            )
    except IntegrityError:  # another worker filed it first
        return None


def _window(day: date, days: int) -> tuple[date, object, object]:
    first = day - timedelta(days=days - 1)
    return first, day_bounds(first)[0], day_bounds(day)[1]


def _score(value: int, threshold: int) -> int:
    return value * 100 // max(threshold, 1)


def _wallet_at_merchant(rule: str, row: dict, first: date, minimum: int, **evidence) -> Finding:
    """A finding about one wallet's payments at one merchant (a row with their ids and its count)."""
    return Finding(
        rule=rule,
        subject=f"wallet:{row['wallet_id']}/merchant:{row['merchant_id']}",
        period_start=first,
        wallet_id=row["wallet_id"],
        merchant_id=row["merchant_id"],
        score=_score(row["count"], minimum),
        evidence=evidence,
    )


def _round_sum_payments(day: date) -> list[Finding]:
    """Rule 1: a wallet pays one merchant a round sum (a multiple of 10,000 won)
    again and again within a week. Real shopping rarely lands on round sums;
    a shop handing out cash for tokens at a discount charges them."""
    rules = settings.FRAUD_RULES
    unit, minimum = rules["round_sum_unit"], rules["round_sum_min_count"]
    first, start, end = _window(day, rules["round_sum_days"])
    rows = (
        Payment.objects.filter(created_at__gte=start, created_at__lt=end, amount__gte=unit)
        .annotate(remainder=Mod("amount", Value(unit)))
        .filter(remainder=0)
        .values("wallet_id", "merchant_id")
        .annotate(count=Count("id"), total=Sum("amount"), first_at=Min("created_at"), last_at=Max("created_at"))
        .filter(count__gte=minimum)
        .order_by("wallet_id", "merchant_id")
    )
    return [
        _wallet_at_merchant(
            FraudFlag.Rule.ROUND_SUM_PAYMENTS,
            row,
            first,
            minimum,
            payments=row["count"],
            total=row["total"],
            unit=unit,
            first_at=row["first_at"].isoformat(),
            last_at=row["last_at"].isoformat(),
        )
        for row in rows
    ]


def _quick_full_refunds(day: date) -> list[Finding]:
    """Rule 2, "payment followed by a refund outside the system", as our ledger sees it.

    The cash that changes hands over the counter never reaches us; what does is
    its cover: the wallet pays the merchant, the merchant refunds the payment in
    full within hours, and the pair does it again and again. Each round earns the
    payment's cashback and spending base (which a refund claws back only if the
    cashback lot still holds it) and leaves the merchant a sales record, while the
    goods, or cash, went across the counter. Investigators of local-currency fraud
    know it as pay-and-cancel churn. Defined here as: at least 3 payments from
    one wallet to one merchant within 7 days, each refunded in full with no refund
    later than 24 hours after the payment."""
    rules = settings.FRAUD_RULES
    minimum = rules["quick_refund_min_count"]
    first, start, end = _window(day, rules["quick_refund_days"])
    late_refund = Refund.objects.filter(
        payment=OuterRef("pk"),
        created_at__gt=ExpressionWrapper(
            OuterRef("created_at") + Value(timedelta(hours=rules["quick_refund_hours"])),
            output_field=DateTimeField(),
        ),
    )
    rows = (
        Payment.objects.filter(created_at__gte=start, created_at__lt=end, refunded_amount=F("amount"))
        .filter(~Exists(late_refund))
        .values("wallet_id", "merchant_id")
        .annotate(count=Count("id"), total=Sum("amount"))
        .filter(count__gte=minimum)
        .order_by("wallet_id", "merchant_id")
    )
    return [
        _wallet_at_merchant(
            FraudFlag.Rule.QUICK_FULL_REFUNDS,
            row,
            first,
            minimum,
            payments_refunded_in_full=row["count"],
            total=row["total"],
            within_hours=rules["quick_refund_hours"],
        )
        for row in rows
    ]


def _takings_above_revenue(day: date) -> list[Finding]:
    """Rule 3: a merchant's voucher takings, annualised, far above the annual
    revenue it declared (which sets its bonus and fee tier). Vouchers are a share
    of a shop's sales, so takings x 12 over k x revenue means sales that did
    not happen, or a small shop cashing out for others."""
    rules = settings.FRAUD_RULES
    days, multiple, minimum = rules["takings_days"], rules["takings_revenue_multiple"], rules["takings_min"]
    first, start, end = _window(day, days)
    rows = (
        Payment.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("merchant_id", "merchant__annual_revenue")
        .annotate(takings=Sum(F("amount") - F("refunded_amount")))
        .filter(takings__gte=minimum)
        # takings / days * 365 > multiple * revenue, kept in integers.
        .annotate(annualised=F("takings") * 365, ceiling=F("merchant__annual_revenue") * multiple * days)
        .filter(annualised__gt=F("ceiling"))
        .order_by("merchant_id")
    )
    findings = []
    for row in rows:
        revenue = row["merchant__annual_revenue"]
        annualised = row["takings"] * 365 // days
        findings.append(
            Finding(
                rule=FraudFlag.Rule.TAKINGS_ABOVE_REVENUE,
                subject=f"merchant:{row['merchant_id']}",
                period_start=first,
                merchant_id=row["merchant_id"],
                score=_score(annualised, multiple * revenue) if revenue else 1000,
                evidence={
                    "takings": row["takings"],
                    "days": days,
                    "annualised": annualised,
                    "annual_revenue": revenue,
                    "multiple": multiple,
                },
            )
        )
    return findings


def _shared_device_keys(day: date) -> list[Finding]:
    """Rule 4: one device key (the same public key) registered for many wallets.
    A phone is one person's; a key on many wallets is one operator running
    other people's wallets, the usual set-up for buying vouchers off citizens."""
    minimum = settings.FRAUD_RULES["shared_device_min_wallets"]
    first = day - timedelta(days=6)
    shared = (
        DeviceKey.objects.filter(party__wallet__isnull=False)
        .values("public_key")
        .annotate(wallets=Count("party__wallet", distinct=True))
        .filter(wallets__gte=minimum)
        .order_by("public_key")
    )
    keys = {row["public_key"]: row["wallets"] for row in shared}
    wallets_by_key: dict[str, list[int]] = {}
    for public_key, wallet_id in (
        Wallet.objects.filter(owner__device_keys__public_key__in=keys)
        .values_list("owner__device_keys__public_key", "pk")
        .order_by("pk")
    ):
        wallets_by_key.setdefault(public_key, []).append(wallet_id)
    return [
        Finding(
            rule=FraudFlag.Rule.SHARED_DEVICE_KEY,
            subject=f"device:{public_key}",
            period_start=first,
            device_public_key=public_key,
            score=_score(count, minimum),
            evidence={"wallets": count, "wallet_ids": wallets_by_key.get(public_key, [])},
        )
        for public_key, count in keys.items()
    ]


# --- review -------------------------------------------------------------------------------------


def dismiss_fraud_flag(*, actor, flag: FraudFlag, reason: str) -> FraudFlag:
    """Close a flag as a false alarm, with the reviewer's reason. Audited."""
    return _review(actor=actor, flag=flag, reason=reason, status=FraudFlag.Status.DISMISSED)


def freeze_fraud_flag_subject(*, actor, flag: FraudFlag, reason: str) -> FraudFlag:
    """Freeze what the flag names (its wallet, its merchant, or every wallet on a
    shared device key) and close the flag as actioned. Audited, with each freeze
    audited by its own service too."""
    return _review(actor=actor, flag=flag, reason=reason, status=FraudFlag.Status.ACTIONED)


def _review(*, actor, flag: FraudFlag, reason: str, status: str) -> FraudFlag:
    require_role(actor, REVIEW_PERMISSION)
    if not isinstance(reason, str) or not reason.strip():
        raise errors.InvalidRequest("A reason is required.", field="reason")
    reason = reason.strip()[:300]
    with transaction.atomic():
        # Lock order: the flag, then wallets by pk (set_wallet_status), then the merchant.
        flag = FraudFlag.objects.select_for_update().get(pk=flag.pk)
        if flag.status != FraudFlag.Status.OPEN:
            raise errors.FraudFlagAlreadyReviewed(flag=flag.pk, status=flag.status)
        frozen = {}
        if status == FraudFlag.Status.ACTIONED:
            wallet_ids = sorted({flag.wallet_id, *flag.evidence.get("wallet_ids", [])} - {None})
            for wallet in Wallet.objects.filter(pk__in=wallet_ids).order_by("pk"):
                set_wallet_status(actor=actor, wallet=wallet, status=Wallet.Status.FROZEN, reason=reason)
            if flag.merchant_id:
                merchant = get_merchant(flag.merchant_id)
                set_merchant_status(actor=actor, merchant=merchant, status=Merchant.Status.FROZEN, reason=reason)
            frozen = {"wallets": wallet_ids, "merchant": flag.merchant_id}
        flag.status = status
        flag.reviewed_by = actor
        flag.reviewed_at = timezone.now()
        flag.review_reason = reason
        flag.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_reason"])
        record_audit(
            actor=actor,
            action=f"fraud_flag.{status}",
            target=flag,
            before={"status": FraudFlag.Status.OPEN},
            after={"status": status, **({"frozen": frozen} if frozen else {})},
            reason=reason,
        )
    return flag
