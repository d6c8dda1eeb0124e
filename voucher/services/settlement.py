"""Merchant settlement: burn the BKRW a merchant received, pay the same KRW out of
the reserve to its settlement account, less a fee by its annual-revenue tier.

Exactly once, by marking rows, not by time watermarks: every payment, refund and
merchant-to-merchant payment a line covers gets that line's id, in the same
transaction as the line's ledger entry and under the merchant's row lock. A row
is settled iff it points at a line, so it can never be paid twice, and a row
that committed late (created before the cutoff, visible only after a batch read
the day) is simply still unmarked and goes into the next settlement.

What a line covers, for merchant M at the batch's cutoff:
- credits received before the cutoff: customer payments to M (gross) and
  payments from other merchants to M (from_merchants, e.g. a supplier paid in BKRW);
- debits up to the moment the line is made, whenever they happened: refunds M gave
  and BKRW M paid to other merchants. Taking a debit off as soon as it exists
  means a line never burns tokens the merchant no longer holds.
burned = gross + from_merchants - refunds - to_merchants. The fee is charged on
what is burned (cashed out), so BKRW passed on to a supplier is charged once, at
the supplier that cashes it out. If burned < 0 (refunds of earlier days exceed
today's takings), nothing is covered and the line is held with that reason: the
refunds are netted against the next settlement.

A batch settles its merchants a chunk per transaction (progress visible, a crash
loses at most one chunk, which the next run re-does); each chunk locks its
merchants' rows in pk order (the order in voucher.services.common), marks rows,
then locks the ledger accounts through bank.services, the way a refund takes its
payment row before the accounts.
"""

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from bank.models import Account, Party
from bank.services import EntryRequest, lock_accounts, open_account, open_party, post_entries, record_audit
from voucher import errors
from voucher.clock import day_bounds, seoul_today
from voucher.models import (
    BASIS_POINTS,
    Merchant,
    MerchantMember,
    MerchantPayment,
    Payment,
    Refund,
    SettlementBatch,
    SettlementLine,
)
from voucher.services.common import BANK_PARTY_REF, _locked, check_key, ledger_key, require_staff, token_accounts

logger = logging.getLogger(__name__)

FEE_INCOME_CODE = "voucher:settlement-fees:KRW"


class HeldReason:
    MERCHANT_FROZEN = "merchant_frozen"
    ACCOUNT_FROZEN = "account_frozen"
    REFUNDS_EXCEED_RECEIPTS = "refunds_exceed_receipts"
    INSUFFICIENT_TOKENS = "insufficient_tokens"


# --- fees ----------------------------------------------------------------------------------


def fee_rate_bp(merchant: Merchant, day: date, *, instant: bool = False) -> int:
    """The merchant's fee rate in basis points on `day`, by the schedule in force then."""
    rows = sorted(_fee_schedule(), key=lambda row: row[0])
    in_force = [tiers for since, tiers in rows if since <= day]
    if not in_force:
        raise errors.InvalidRequest(f"No settlement fee schedule is in force on {day}.", field="day")
    rate = 0
    for ceiling, tier_rate in in_force[-1]:
        if ceiling is None or merchant.annual_revenue <= ceiling:
            rate = tier_rate
            break
    return rate + (settings.VOUCHER_INSTANT_SETTLEMENT_FEE_BP if instant else 0)


def fee_for(amount: int, rate_bp: int) -> int:
    """Rounded down to the won: the merchant never pays a fraction of a won more than the rate."""
    return amount * rate_bp // BASIS_POINTS if amount > 0 else 0


def _fee_schedule() -> list[tuple[date, list[tuple[int | None, int]]]]:
    """The schedule in settings, parsed (a few rows: cheaper to read than to cache)."""
    return [
        (date.fromisoformat(row["effective_from"]), [(ceiling, int(rate)) for ceiling, rate in row["tiers"]])
        for row in settings.VOUCHER_SETTLEMENT_FEE_SCHEDULE
    ]


def fee_income_account() -> Account:
    """The bank's KRW income account for settlement fees, opened on first use."""
    account = Account.objects.filter(code=FEE_INCOME_CODE).first()
    if account is None:
        bank = open_party(kind=Party.Kind.BANK, external_ref=BANK_PARTY_REF, display_name="Busan Bank")
        account = open_account(owner=bank, code=FEE_INCOME_CODE, currency="KRW", normal_side=Account.NormalSide.INCOME)
    return account


# --- the daily (or staff) batch --------------------------------------------------------------


def settle_day(*, day: date, acting_user=None, progress: Callable[[int, int], None] | None = None) -> SettlementBatch:
    """Settle every merchant's BKRW received on Seoul business `day` (and anything
    older still unsettled). Safe to run again, retried, or on two workers at once:
    a second run resumes the same batch and settles only merchants without a line.

    `acting_user` (staff) marks a run started by hand; `progress(done, total)` is
    called after each chunk.
    """
    if not isinstance(day, date) or isinstance(day, datetime):
        raise errors.InvalidRequest("day must be a date.", field="day")
    if day >= seoul_today():
        raise errors.InvalidRequest("Only a finished business day can be settled.", field="day")
    if acting_user is not None:
        require_staff(acting_user)
    _check_schedule_covers(day)
    batch = _daily_batch(day, acting_user)
    if batch.status == SettlementBatch.Status.DONE:
        return batch
    chunk = max(1, settings.VOUCHER_SETTLEMENT_CHUNK)
    while True:
        todo = _merchants_to_settle(batch)
        if not todo:
            break
        total, done = len(todo), 0
        logger.info("settlement %s: %d merchants to settle", batch, total)
        for start in range(0, total, chunk):
            ids = todo[start : start + chunk]
            with transaction.atomic():
                _settle_merchants(batch, ids)
                _refresh_totals(batch)
            done += len(ids)
            if progress:
                progress(done, total)
            logger.info("settlement %s: %d of %d merchants", batch, done, total)
    with transaction.atomic():
        batch = SettlementBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != SettlementBatch.Status.DONE:
            batch.status = SettlementBatch.Status.DONE
            batch.finished_at = timezone.now()
            batch.save(update_fields=["status", "finished_at"])
            _refresh_totals(batch)
            batch.refresh_from_db()
            if acting_user is not None:
                record_audit(
                    actor=acting_user,
                    action="voucher.settle_day",
                    target=batch,
                    after={"period": str(day), "paid": batch.paid_count, "held": batch.held_count, "net": batch.net},
                )
    return batch


def _check_schedule_covers(day: date) -> None:
    if not any(since <= day for since, _ in _fee_schedule()):
        raise errors.InvalidRequest(f"No settlement fee schedule is in force on {day}.", field="day")


def _daily_batch(day: date, acting_user) -> SettlementBatch:
    existing = SettlementBatch.objects.exclude(kind=SettlementBatch.Kind.INSTANT).filter(period=day).first()
    if existing:
        return existing
    kind = SettlementBatch.Kind.STAFF if acting_user is not None else SettlementBatch.Kind.DAILY
    try:
        with transaction.atomic():
            return SettlementBatch.objects.create(
                period=day, kind=kind, cutoff=day_bounds(day)[1], requested_by=acting_user
            )
    except IntegrityError:  # another worker created it first: resume theirs
        return SettlementBatch.objects.exclude(kind=SettlementBatch.Kind.INSTANT).get(period=day)


def _merchants_to_settle(batch: SettlementBatch) -> list[int]:
    """Merchants with BKRW received before the cutoff that no line covers, and no line in this batch yet."""
    paid_to = Payment.objects.filter(settlement_line__isnull=True, created_at__lt=batch.cutoff)
    from_merchants = MerchantPayment.objects.filter(payee_settlement_line__isnull=True, created_at__lt=batch.cutoff)
    ids = set(paid_to.values_list("merchant_id", flat=True).distinct())
    ids |= set(from_merchants.values_list("payee_id", flat=True).distinct())
    ids -= set(batch.lines.values_list("merchant_id", flat=True))
    return sorted(ids)


def _refresh_totals(batch: SettlementBatch) -> None:
    paid = Q(status=SettlementLine.Status.PAID)
    totals = batch.lines.aggregate(
        merchant_count=Count("pk"),
        paid_count=Count("pk", filter=paid),
        held_count=Count("pk", filter=~paid),
        payment_count=Sum("payment_count", filter=paid),
        gross=Sum("gross", filter=paid),
        refunds=Sum("refunds", filter=paid),
        fees=Sum("fee", filter=paid),
        net=Sum("net", filter=paid),
    )
    SettlementBatch.objects.filter(pk=batch.pk).update(**{k: v or 0 for k, v in totals.items()})


# --- instant settlement ---------------------------------------------------------------------


def settle_merchant_now(*, merchant: Merchant, acting_user, idempotency_key: str) -> SettlementLine:
    """Settle everything the merchant has received up to now, at once, at the
    tier rate plus the instant fee. Only the merchant's owner or bank staff may
    ask. A repeated key returns the first line and pays nothing new."""
    check_key(idempotency_key)
    if not isinstance(merchant, Merchant) or merchant.pk is None:
        raise errors.InvalidRequest("No such merchant.", field="merchant")
    _require_owner_or_staff(acting_user, merchant)
    key = f"{merchant.pk}:{idempotency_key}"
    earlier = _instant_line(key)
    if earlier is not None:
        return earlier
    now = timezone.now()
    try:
        with transaction.atomic():
            batch = SettlementBatch.objects.create(
                period=seoul_today(now),
                kind=SettlementBatch.Kind.INSTANT,
                cutoff=now,
                requested_by=acting_user if getattr(acting_user, "pk", None) else None,
                idempotency_key=key,
            )
            [line] = _settle_merchants(batch, [merchant.pk], instant=True) or [None]
            if line is None:  # nothing received since the last settlement
                raise errors.NothingToSettle()
            if line.status == SettlementLine.Status.HELD:
                if line.held_reason == HeldReason.MERCHANT_FROZEN:
                    raise errors.MerchantFrozen(merchant=merchant.pk)
                if line.held_reason == HeldReason.ACCOUNT_FROZEN:
                    raise errors.MerchantFrozen(merchant=merchant.pk, reason=line.held_reason)
                raise errors.NothingToSettle(reason=line.held_reason)
            if line.burned == 0:
                raise errors.NothingToSettle()
            _refresh_totals(batch)
            batch.status = SettlementBatch.Status.DONE
            batch.finished_at = timezone.now()
            batch.save(update_fields=["status", "finished_at"])
            record_audit(
                actor=acting_user,
                action="voucher.settle_merchant_now",
                target=line,
                after={"merchant": merchant.pk, "net": line.net, "fee": line.fee, "payments": line.payment_count},
            )
            return line
    except IntegrityError:  # the same key raced us and won: its line is the answer
        earlier = _instant_line(key)
        if earlier is None:
            raise
        return earlier


def _instant_line(key: str) -> SettlementLine | None:
    return SettlementLine.objects.filter(batch__idempotency_key=key).select_related("batch", "merchant").first()


def _require_owner_or_staff(user, merchant: Merchant) -> None:
    if user is None or not getattr(user, "is_active", False):
        raise errors.MerchantOwnerOnly()
    if getattr(user, "is_staff", False):
        return
    is_owner = MerchantMember.objects.filter(
        user_id=user.pk, merchant_id=merchant.pk, role=MerchantMember.Role.OWNER
    ).exists()
    if not is_owner:
        raise errors.MerchantOwnerOnly()


# --- one chunk of merchants, under their locks ------------------------------------------------


def _settle_merchants(batch: SettlementBatch, merchant_ids: Iterable[int], *, instant: bool = False):
    """Write a line for each merchant that has none in this batch yet, mark the
    rows it covers, and post the ledger entries. Must run inside transaction.atomic."""
    merchants = _locked(Merchant.objects.all(), merchant_ids)
    have = set(batch.lines.filter(merchant__in=merchants).values_list("merchant_id", flat=True))
    merchants = [m for m in merchants if m.pk not in have]  # another worker settled them while we waited
    if not merchants:
        return []
    lines = SettlementLine.objects.bulk_create(
        [
            SettlementLine(
                batch=batch,
                merchant=m,
                period=batch.period,
                status=SettlementLine.Status.PAID,
                fee_rate_bp=fee_rate_bp(m, batch.period, instant=instant),
            )
            for m in merchants
        ]
    )
    if any(line.pk is None for line in lines):  # a backend that does not return ids
        lines = list(batch.lines.filter(merchant__in=merchants).order_by("merchant_id"))
    by_merchant = {line.merchant_id: line for line in lines}
    ids = [m.pk for m in merchants]
    _mark(batch, ids)
    _read_figures(by_merchant)

    tokens = token_accounts()
    fee_account = fee_income_account()
    accounts = lock_accounts(
        [m.token_account_id for m in merchants]
        + [m.settlement_account_id for m in merchants]
        + [tokens.reserve.pk, tokens.issuance.pk, fee_account.pk]
    )
    # A merchant another run settled meanwhile (an instant settlement that took
    # the same payments) has nothing left: it gets no line rather than an empty one.
    empty = [
        line for line in lines if not (line.payment_count or line.refunds or line.from_merchants or line.to_merchants)
    ]
    if empty:
        SettlementLine.objects.filter(pk__in=[line.pk for line in empty]).delete()
        lines = [line for line in lines if line not in empty]
        merchants = [m for m in merchants if m.pk in {line.merchant_id for line in lines}]
    requests, paying, held = [], [], []
    for merchant in merchants:
        line = by_merchant[merchant.pk]
        burned = line.gross + line.from_merchants - line.refunds - line.to_merchants
        reason = _held_reason(merchant, burned, accounts)
        if reason:
            line.status, line.held_reason = SettlementLine.Status.HELD, reason
            line.fee = line.net = 0
            held.append(line)
            continue
        line.fee = fee_for(burned, line.fee_rate_bp)
        line.net = burned - line.fee
        if burned == 0:  # e.g. one payment refunded in full: rows covered, nothing to move
            continue
        entry_lines = [
            (merchant.token_account_id, -burned),
            (tokens.issuance.pk, burned),
            (tokens.reserve.pk, -burned),
        ]
        if line.net:
            entry_lines.append((merchant.settlement_account_id, line.net))
        if line.fee:
            entry_lines.append((fee_account.pk, line.fee))
        requests.append(
            EntryRequest(
                lines=entry_lines,
                kind="voucher_settlement",
                memo=f"settlement {batch.period} ({batch.get_kind_display()})",
                idempotency_key=ledger_key("settle", line.pk),
            )
        )
        paying.append(line)
    for line, entry in zip(paying, post_entries(requests=requests), strict=True):
        line.entry = entry
    if held:
        _unmark([line.pk for line in held])
    SettlementLine.objects.bulk_update(lines, _LINE_FIGURES)
    return lines


_LINE_FIGURES = [
    "status",
    "held_reason",
    "payment_count",
    "gross",
    "refunds",
    "from_merchants",
    "to_merchants",
    "fee",
    "net",
    "entry",
]


def _held_reason(merchant: Merchant, burned: int, accounts: dict) -> str:
    if merchant.status != Merchant.Status.ACTIVE:
        return HeldReason.MERCHANT_FROZEN
    token, payee = accounts[merchant.token_account_id], accounts[merchant.settlement_account_id]
    if token.status != Account.Status.ACTIVE or payee.status != Account.Status.ACTIVE:
        return HeldReason.ACCOUNT_FROZEN
    if burned < 0:
        return HeldReason.REFUNDS_EXCEED_RECEIPTS
    if burned > token.available:  # cannot happen while every debit is covered; refuse rather than overdraw
        return HeldReason.INSUFFICIENT_TOKENS
    return ""


def _mark(batch: SettlementBatch, merchant_ids: list[int]) -> None:
    """Point every row the lines cover at its line. An UPDATE sees only committed
    rows and waits for a row another transaction is changing (a refund holding its
    payment), then re-checks it, so a row is marked by one line only."""
    lines = SettlementLine.objects.filter(batch=batch)
    cutoff = batch.cutoff
    Payment.objects.filter(merchant_id__in=merchant_ids, settlement_line__isnull=True, created_at__lt=cutoff).update(
        settlement_line=Subquery(lines.filter(merchant_id=OuterRef("merchant_id")).values("pk")[:1])
    )
    MerchantPayment.objects.filter(
        payee_id__in=merchant_ids, payee_settlement_line__isnull=True, created_at__lt=cutoff
    ).update(payee_settlement_line=Subquery(lines.filter(merchant_id=OuterRef("payee_id")).values("pk")[:1]))
    MerchantPayment.objects.filter(payer_id__in=merchant_ids, payer_settlement_line__isnull=True).update(
        payer_settlement_line=Subquery(lines.filter(merchant_id=OuterRef("payer_id")).values("pk")[:1])
    )
    # Refunds name their merchant through the payment; few, so one UPDATE per merchant that has any.
    line_of = dict(lines.filter(merchant_id__in=merchant_ids).values_list("merchant_id", "pk"))
    pending: dict[int, list[int]] = {}
    unsettled = Refund.objects.filter(payment__merchant_id__in=merchant_ids, settlement_line__isnull=True)
    for refund_id, merchant_id in unsettled.values_list("pk", "payment__merchant_id"):
        pending.setdefault(merchant_id, []).append(refund_id)
    for merchant_id, refund_ids in pending.items():
        Refund.objects.filter(pk__in=refund_ids, settlement_line__isnull=True).update(
            settlement_line_id=line_of[merchant_id]
        )


def _unmark(line_ids: list[int]) -> None:
    """A held line covers nothing: its rows wait for a later settlement."""
    Payment.objects.filter(settlement_line__in=line_ids).update(settlement_line=None)
    Refund.objects.filter(settlement_line__in=line_ids).update(settlement_line=None)
    MerchantPayment.objects.filter(payee_settlement_line__in=line_ids).update(payee_settlement_line=None)
    MerchantPayment.objects.filter(payer_settlement_line__in=line_ids).update(payer_settlement_line=None)


def _read_figures(by_line_merchant: dict[int, SettlementLine]) -> None:
    lines = {line.pk: line for line in by_line_merchant.values()}
    ids = list(lines)
    for line_id, count, total in (
        Payment.objects.filter(settlement_line__in=ids)
        .values("settlement_line")
        .annotate(n=Count("pk"), total=Sum("amount"))
        .values_list("settlement_line", "n", "total")
    ):
        lines[line_id].payment_count, lines[line_id].gross = count, total
    for line_id, total in (
        Refund.objects.filter(settlement_line__in=ids)
        .values("settlement_line")
        .annotate(total=Sum("amount"))
        .values_list("settlement_line", "total")
    ):
        lines[line_id].refunds = total
    for line_id, total in (
        MerchantPayment.objects.filter(payee_settlement_line__in=ids)
        .values("payee_settlement_line")
        .annotate(total=Sum("amount"))
        .values_list("payee_settlement_line", "total")
    ):
        lines[line_id].from_merchants = total
    for line_id, total in (
        MerchantPayment.objects.filter(payer_settlement_line__in=ids)
        .values("payer_settlement_line")
        .annotate(total=Sum("amount"))
        .values_list("payer_settlement_line", "total")
    ):
        lines[line_id].to_merchants = total


# --- what the portal shows before a settlement ------------------------------------------------


def estimate_next_settlement(merchant: Merchant) -> dict:
    """What settling the merchant now would pay, at the daily rate: gross,
    refunds, merchant-to-merchant in and out, fee and net. Reads only."""
    payments = Payment.objects.filter(merchant=merchant, settlement_line__isnull=True).aggregate(
        n=Count("pk"), total=Sum("amount")
    )
    refunds = Refund.objects.filter(payment__merchant=merchant, settlement_line__isnull=True).aggregate(
        total=Sum("amount")
    )
    from_merchants = MerchantPayment.objects.filter(payee=merchant, payee_settlement_line__isnull=True).aggregate(
        total=Sum("amount")
    )
    to_merchants = MerchantPayment.objects.filter(payer=merchant, payer_settlement_line__isnull=True).aggregate(
        total=Sum("amount")
    )
    gross, refunded = payments["total"] or 0, refunds["total"] or 0
    received, paid_out = from_merchants["total"] or 0, to_merchants["total"] or 0
    burned = max(0, gross + received - refunded - paid_out)
    rate = fee_rate_bp(merchant, seoul_today())
    fee = fee_for(burned, rate)
    return {
        "payment_count": payments["n"] or 0,
        "gross": gross,
        "refunds": refunded,
        "from_merchants": received,
        "to_merchants": paid_out,
        "fee_rate_bp": rate,
        "fee": fee,
        "net": burned - fee,
    }
