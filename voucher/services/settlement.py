"""Merchant settlement: burn the BKRW a merchant received, pay the same KRW out of
the reserve to its settlement account, less a fee by its annual-revenue tier.

Exactly once, by id ranges made exact by a lock. Every row that moves a
merchant's BKRW (a payment to it, a refund it gives, a payment between
merchants) is inserted by a transaction that holds the merchant's token account
locked (FOR UPDATE, taken by bank.services before the entry and the row are
written; see voucher.services.payments and refunds). So while settlement holds
that lock, no row of the merchant is in flight: every one it will ever have is
either visible now or gets a higher id later. A line therefore covers the ids in
(after, through] of each kind, `after` being where the merchant's previous paid
line ended; a merchant's paid lines are numbered (`sequence`, unique per
merchant), so no two can start from the same place, and none is skipped. A row
that commits late is simply above the watermark and goes into the next line.
(Marking each row with its line was measured first: the UPDATE alone costs ~60x a
GROUP BY over the same rows, so the ranges are what keep a batch fast.)

What a line covers, for merchant M at the batch's cutoff:
- credits received before the cutoff: customer payments to M (gross) and
  payments from other merchants to M (from_merchants, e.g. a supplier paid in BKRW);
- debits up to the moment the line is made, whenever they happened: refunds M gave
  and BKRW M paid to other merchants. Taking a debit off as soon as it exists
  means a line never burns tokens the merchant no longer holds.
burned = gross + from_merchants - refunds - to_merchants. The fee is charged on
what is burned (cashed out), so BKRW passed on to a supplier is charged once, at
the supplier that cashes it out. If burned < 0 (refunds of earlier days exceed
today's takings), the line is held with that reason and covers nothing: the
refunds are netted against the next settlement.

A batch settles its merchants a chunk per transaction (progress visible, a crash
loses at most the chunks in flight, which the next run re-does). Each chunk locks
an id range of merchants' rows, then their ledger accounts (the lock order of
voucher.services.common), reads what is new with one query per kind of row,
posts its entries with one call and inserts its lines with one statement; the
reserve, issuance and fee income accounts it posts to are written last (bank's
deferred_balances), so that two chunks, on two threads, run side by side. An
entry settles a group of up to MERCHANTS_PER_ENTRY merchants, as a bank books a
bulk payment file: each merchant still has its own two postings in it (BKRW
burned, KRW paid), and each line names the entry. One entry per merchant was
measured first: the ledger rows and their commit-time checks were most of the
settlement's time.
"""

import gc
import logging
import operator
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from bank import prepared
from bank.errors import AccountBusy
from bank.models import Account, Party
from bank.prepared import int_array
from bank.services import (
    EntryRequest,
    deferred_balances,
    lock_account_rows,
    open_account,
    open_party,
    post_locked,
    record_audit,
)
from bank.services.controls import require_role
from bank.services.posting import MAX_LINES
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
from voucher.services.common import BANK_PARTY_REF, check_key, ledger_key, token_accounts

logger = logging.getLogger(__name__)

FEE_INCOME_CODE = "voucher:settlement-fees:KRW"
RUN_PERMISSION = "voucher.run_settlement"


class HeldReason:
    MERCHANT_FROZEN = "merchant_frozen"
    ACCOUNT_FROZEN = "account_frozen"
    REFUNDS_EXCEED_RECEIPTS = "refunds_exceed_receipts"
    INSUFFICIENT_TOKENS = "insufficient_tokens"


# --- fees ----------------------------------------------------------------------------------


def fee_rate_bp(merchant: Merchant, day: date, *, instant: bool = False, schedule=None) -> int:
    """The merchant's fee rate in basis points on `day`, by the schedule in force then."""
    return _rate(merchant.annual_revenue, _tiers_in_force(day, schedule or _fee_schedule()), instant)


def _rate(annual_revenue: int, tiers: list[tuple[int | None, int]], instant: bool) -> int:
    rate = 0
    for ceiling, tier_rate in tiers:
        if ceiling is None or annual_revenue <= ceiling:
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
    if acting_user is not None:  # beat and the task run it as nobody; a person needs the role
        require_role(acting_user, RUN_PERMISSION)
    _check_schedule_covers(day)
    batch = _daily_batch(day, acting_user)
    if batch.status == SettlementBatch.Status.DONE:
        return batch
    # The merchants in id ranges of VOUCHER_SETTLEMENT_CHUNK; each range is looked
    # through once. A payment from before the cutoff that commits only after its
    # range was looked through (a straggler) is above its merchant's watermark,
    # so the next day's batch settles it; nothing is lost or paid twice.
    ranges = _merchant_ranges(max(1, settings.VOUCHER_SETTLEMENT_CHUNK))
    total, done = sum(count for _, _, count in ranges), 0
    logger.info("settlement %s: %d merchants to look through", batch, total)
    with _collector_on_new_objects_only():
        for checked in _settle_ranges(batch, ranges):
            done += checked
            if progress:
                progress(done, total)
            logger.info("settlement %s: %d of %d merchants looked through", batch, done, total)
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


@contextmanager
def _collector_on_new_objects_only() -> Iterator[None]:
    """While settling, Python's cycle collector looks only at objects made since it
    began. The rows and drafts a batch makes add up to a full collection, which then
    walks everything Django and the process have loaded (about 25 ms of a 0.45 s
    1M-payment batch); gc.freeze sets those aside until gc.unfreeze gives them back."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _merchant_ranges(size: int) -> list[tuple[int, int, int]]:
    """Every merchant, as (first id, last id, count) ranges of `size` merchants in id order."""
    sql = """
        SELECT min(id), max(id), count(*) FROM (
            SELECT id, (row_number() OVER (ORDER BY id) - 1) / %s AS part FROM voucher_merchant
        ) numbered GROUP BY part ORDER BY part"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [size])
        return cursor.fetchall()


def _settle_ranges(batch: SettlementBatch, ranges: list[tuple[int, int, int]]) -> Iterator[int]:
    """Settle the merchants of each range that have something to settle, a range
    per transaction; yields each range's merchant count as ranges finish.

    On PostgreSQL, outside a caller's transaction, VOUCHER_SETTLEMENT_WORKERS
    threads (this one and helpers) settle chunks side by side, each on its own
    connection: a chunk locks only its own merchants until its house accounts
    are written, last (bank's deferred_balances), so chunks overlap but for
    those last milliseconds.
    Inside a caller's transaction (whose rows another connection cannot see), or
    on SQLite, chunks run one after the other on this connection."""
    house = _House.find()
    workers = min(settings.VOUCHER_SETTLEMENT_WORKERS, len(ranges))
    if workers <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for first, last, count in ranges:
            _settle_range(batch, first, last, house)
            yield count
        return
    work: queue.SimpleQueue = queue.SimpleQueue()
    for merchant_range in ranges:
        work.put(merchant_range)
    finished: queue.SimpleQueue = queue.SimpleQueue()  # other workers' counts; None when one stops
    stop = threading.Event()  # a worker failed, or the caller stopped listening
    failures: list[BaseException] = []

    def settle_next() -> int | None:
        """Settle the next range; its merchant count, or None when none is left or the workers stop."""
        if stop.is_set():
            return None
        try:
            first, last, count = work.get_nowait()
        except queue.Empty:
            return None
        try:
            _settle_range(batch, first, last, house)
        except BaseException as error:  # raised in this (the caller's) thread once every worker stopped
            failures.append(error)
            stop.set()
            return None
        return count

    def help_settle() -> None:
        try:
            while (count := settle_next()) is not None:
                finished.put(count)
        finally:
            connections.close_all()  # this thread's own connection
            finished.put(None)

    helpers = [threading.Thread(target=help_settle, name=f"settle-{batch.pk}-{n}") for n in range(1, workers)]
    for thread in helpers:
        thread.start()
    running = len(helpers)

    def helpers_finished(wait: bool) -> Iterator[int]:
        nonlocal running
        while running:
            try:
                settled = finished.get(block=wait)
            except queue.Empty:
                return
            if settled is None:
                running -= 1
            elif not stop.is_set():
                yield settled

    try:
        # This thread settles too, on the connection it has open already (a new
        # one starts with cold caches: its first chunk took a third longer).
        while (count := settle_next()) is not None:
            yield count
            yield from helpers_finished(wait=False)
        yield from helpers_finished(wait=True)
    finally:  # also when the caller stops listening: no helper goes on by itself
        stop.set()
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]


# A chunk that found a house account locked by a payment waiting for one of its
# merchants rolls back and runs again (bank's deferred_balances); the payment
# finishes meanwhile, so a few tries are plenty.
_BUSY_TRIES = 5


def _settle_range(batch: SettlementBatch, first: int, last: int, house: "_House") -> None:
    for attempt in range(1, _BUSY_TRIES + 1):
        try:
            with transaction.atomic():
                _add_to_totals(batch, _settle_merchants(batch, _lock_merchant_range(first, last), house=house))
            return
        except AccountBusy:
            if attempt == _BUSY_TRIES:
                raise
            logger.info("settlement %s: house accounts busy, chunk retried (%d)", batch, attempt)
            time.sleep(random.uniform(0, 0.05 * attempt))


def _check_schedule_covers(day: date) -> None:
    _tiers_in_force(day, _fee_schedule())


def _tiers_in_force(day: date, schedule) -> list[tuple[int | None, int]]:
    """The fee tiers of the newest schedule dated on or before `day`; refused when none is."""
    in_force = [tiers for since, tiers in sorted(schedule, key=lambda row: row[0]) if since <= day]
    if not in_force:
        raise errors.InvalidRequest(f"No settlement fee schedule is in force on {day}.", field="day")
    return in_force[-1]


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


def _latest_paid_line(merchant) -> QuerySet[SettlementLine]:
    """The merchant's last paid line, whose `through` ids are where its next line starts."""
    return SettlementLine.objects.filter(merchant=merchant, sequence__isnull=False).order_by("-sequence")[:1]


def _add_to_totals(batch: SettlementBatch, drafts: list["_Draft"]) -> None:
    """Add a chunk's lines to the batch's totals, in the chunk's transaction (cheaper than
    summing every line so far after each chunk; the batch is summed whole when it is done)."""
    paid = [d for d in drafts if d.status == SettlementLine.Status.PAID]
    SettlementBatch.objects.filter(pk=batch.pk).update(
        merchant_count=F("merchant_count") + len(drafts),
        paid_count=F("paid_count") + len(paid),
        held_count=F("held_count") + len(drafts) - len(paid),
        payment_count=F("payment_count") + sum(d.payment_count for d in paid),
        gross=F("gross") + sum(d.gross for d in paid),
        refunds=F("refunds") + sum(d.refunds for d in paid),
        fees=F("fees") + sum(d.fee for d in paid),
        net=F("net") + sum(d.net for d in paid),
    )


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
            [draft] = _settle_merchants(batch, _lock_merchant_range(merchant.pk, merchant.pk), instant=True) or [None]
            if draft is None:  # nothing received since the last settlement
                raise errors.NothingToSettle()
            if draft.status == SettlementLine.Status.HELD:
                if draft.held_reason == HeldReason.MERCHANT_FROZEN:
                    raise errors.MerchantFrozen(merchant=merchant.pk)
                if draft.held_reason == HeldReason.ACCOUNT_FROZEN:
                    raise errors.MerchantFrozen(merchant=merchant.pk, reason=draft.held_reason)
                raise errors.NothingToSettle(reason=draft.held_reason)
            if draft.burned == 0:
                raise errors.NothingToSettle()
            line = SettlementLine.objects.select_related("batch", "merchant").get(batch=batch, merchant=merchant)
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
        require_role(user, RUN_PERMISSION)
        return
    is_owner = MerchantMember.objects.filter(
        user_id=user.pk, merchant_id=merchant.pk, role=MerchantMember.Role.OWNER
    ).exists()
    if not is_owner:
        raise errors.MerchantOwnerOnly()


# --- one chunk of merchants, under their locks ------------------------------------------------

# The four kinds of rows a line covers: (model, the column naming its merchant, the join that needs).
KINDS = ("payments", "refunds", "from_merchants", "to_merchants")
_SOURCES = {
    "payments": (Payment, "r.merchant_id", ""),
    "refunds": (Refund, "p.merchant_id", "JOIN {payment} p ON p.id = r.payment_id"),
    "from_merchants": (MerchantPayment, "r.payee_id", ""),
    "to_merchants": (MerchantPayment, "r.payer_id", ""),
}
_CREDITS = ("payments", "from_merchants")  # counted up to the cutoff; debits up to now


# A ledger entry holds at most bank's MAX_LINES postings: two per merchant
# (its BKRW burned, its KRW paid) and three shared (issuance, reserve, fee income).
MERCHANTS_PER_ENTRY = (MAX_LINES - 3) // 2


@dataclass(slots=True)
class _Draft:
    """One merchant's line before it is written: plain values, since a batch makes
    ten thousand and model instances would cost more than the settling. Field names
    are SettlementLine's column attnames, so a row is read off by name."""

    merchant_id: int
    token_account_id: int
    settlement_account_id: int
    fee_rate_bp: int
    status: str = SettlementLine.Status.PAID
    held_reason: str = ""
    sequence: int | None = None
    payment_count: int = 0
    gross: int = 0
    refunds: int = 0
    from_merchants: int = 0
    to_merchants: int = 0
    fee: int = 0
    net: int = 0
    payments_after: int = 0
    payments_through: int = 0
    refunds_after: int = 0
    refunds_through: int = 0
    from_merchants_after: int = 0
    from_merchants_through: int = 0
    to_merchants_after: int = 0
    to_merchants_through: int = 0
    entry_id: int | None = None
    burned: int = 0  # gross + from_merchants - refunds - to_merchants (not a column: net + fee when paid)


@dataclass(frozen=True)
class _House:
    """The bank's accounts every settlement entry posts to."""

    reserve: Account  # KRW out
    issuance: Account  # BKRW burned
    fees: Account  # fee income

    @classmethod
    def find(cls) -> "_House":
        tokens = token_accounts()
        return cls(reserve=tokens.reserve, issuance=tokens.issuance, fees=fee_income_account())

    @property
    def accounts(self) -> list[Account]:
        return [self.reserve, self.issuance, self.fees]


def _settle_merchants(
    batch: SettlementBatch, merchants: list[tuple], *, instant: bool = False, house: _House | None = None
) -> list[_Draft]:
    """Write a line for each merchant that has none in this batch yet, covering
    what is new since its last paid line, and post the ledger entries. Must run
    inside transaction.atomic, with `merchants` locked in it (_lock_merchant_range).
    Returns the lines written."""
    ids = [pk for pk, *_ in merchants]
    have = _settled_in(batch, ids)
    merchants = [row for row in merchants if row[0] not in have]  # another worker settled them while we waited
    if not merchants:
        return []
    house = house or _House.find()
    # From here on no row of these merchants can commit: every writer holds these locks.
    # An instant settlement locks the house accounts with them, in id order, as a
    # payment does; a batch's chunk writes them last, so that chunks run side by side.
    accounts = lock_account_rows(
        [row[3] for row in merchants]
        + [row[4] for row in merchants]
        + ([a.pk for a in house.accounts] if instant else [])
    )
    ids = [row[0] for row in merchants]
    marks = _watermarks(ids)
    new = {
        kind: _new_rows(kind, {m: marks[m][kind] for m in ids}, batch.cutoff if kind in _CREDITS else None)
        for kind in KINDS
    }
    tiers = _tiers_in_force(batch.period, _fee_schedule())
    drafts, paying = [], []
    rates: dict[int, int] = {}  # by annual revenue: a few tiers for thousands of merchants
    payments, refunds_given, from_merchants, to_merchants = (new[kind] for kind in KINDS)
    for merchant_id, status, revenue, token_account_id, settlement_account_id in merchants:
        mark = marks[merchant_id]
        p_through, payment_count, gross = payments.get(merchant_id) or (mark["payments"], 0, 0)
        r_through, _, refunds = refunds_given.get(merchant_id) or (mark["refunds"], 0, 0)
        i_through, _, received = from_merchants.get(merchant_id) or (mark["from_merchants"], 0, 0)
        o_through, _, paid_out = to_merchants.get(merchant_id) or (mark["to_merchants"], 0, 0)
        # A batch settles the merchants that received BKRW before its cutoff (refunds
        # alone wait for the next takings), an instant settlement anything new. Nothing
        # new (an instant settlement took it meanwhile): no empty line.
        if not (payment_count or received) and (not instant or not (refunds or paid_out)):
            continue
        rate = rates.get(revenue)
        if rate is None:
            rate = rates[revenue] = _rate(revenue, tiers, instant)
        draft = _Draft(
            merchant_id,
            token_account_id,
            settlement_account_id,
            rate,
            payment_count=payment_count,
            gross=gross,
            refunds=refunds,
            from_merchants=received,
            to_merchants=paid_out,
            payments_after=mark["payments"],
            payments_through=p_through,
            refunds_after=mark["refunds"],
            refunds_through=r_through,
            from_merchants_after=mark["from_merchants"],
            from_merchants_through=i_through,
            to_merchants_after=mark["to_merchants"],
            to_merchants_through=o_through,
            burned=gross + received - refunds - paid_out,
        )
        burned = draft.burned
        reason = _held_reason(status, burned, accounts[token_account_id], accounts[settlement_account_id])
        if reason:
            draft.status, draft.held_reason = SettlementLine.Status.HELD, reason
        else:
            draft.sequence = mark["sequence"] + 1
            draft.fee = fee_for(burned, draft.fee_rate_bp)
            draft.net = burned - draft.fee
            if burned:  # fully refunded sales: covered, nothing moves
                paying.append(draft)
        drafts.append(draft)
    groups = [paying[i : i + MERCHANTS_PER_ENTRY] for i in range(0, len(paying), MERCHANTS_PER_ENTRY)]
    memo = f"settlement {batch.period} ({batch.get_kind_display()})"
    requests = [_entry_request(batch, group, memo, house) for group in groups]
    with deferred_balances([] if instant else house.accounts) as later:
        for group, entry in zip(groups, post_locked(requests, accounts, deferred=later), strict=True):
            for draft in group:
                draft.entry_id = entry.pk
        return _insert_lines(batch, drafts)


def _entry_request(batch, group: list[_Draft], memo: str, house: "_House") -> EntryRequest:
    """Burn what the lines cover; the reserve pays the KRW, net to each merchant and the fees to the bank.

    One entry for a group of merchants, as a bank books a bulk payment file: the
    postings still name each merchant's two accounts, and each line names the entry."""
    lines, burned, fees = [], 0, 0
    for draft in group:
        lines.append((draft.token_account_id, -draft.burned))
        if draft.net:
            lines.append((draft.settlement_account_id, draft.net))
        burned += draft.burned
        fees += draft.fee
    lines += [(house.issuance.pk, burned), (house.reserve.pk, -burned)]
    if fees:
        lines.append((house.fees.pk, fees))
    return EntryRequest(
        lines=lines,
        kind="voucher_settlement",
        memo=memo,
        # A group never repeats its first and last merchant in one batch: both get lines with it.
        idempotency_key=ledger_key("settle", batch.pk, group[0].merchant_id, group[-1].merchant_id),
    )


# Every column but the id: the batch's own values, then each draft's by name.
_SHARED_FIELDS = ("batch_id", "period", "created_at")
_LINE_FIELDS = sorted(
    (f for f in SettlementLine._meta.concrete_fields if not f.primary_key),
    key=lambda f: f.attname not in _SHARED_FIELDS,  # the batch's own values first, then each draft's
)
_draft_values = operator.attrgetter(*[f.attname for f in _LINE_FIELDS if f.attname not in _SHARED_FIELDS])


def _insert_lines(batch: SettlementBatch, drafts: list[_Draft]) -> list[_Draft]:
    if not drafts:
        return []
    quote = connection.ops.quote_name
    table = quote(SettlementLine._meta.db_table)
    columns = ", ".join(quote(f.column) for f in _LINE_FIELDS)
    shared = {"batch_id": batch.pk, "period": batch.period, "created_at": timezone.now()}
    if connection.vendor == "postgresql":
        # COPY formats the rows in C, several times faster than adapting arrays or values.
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_line_types())
            ours = tuple(shared[name] for name in _SHARED_FIELDS)
            for draft in drafts:
                copy.write_row(ours + _draft_values(draft))
    else:
        created = connection.ops.adapt_datetimefield_value(shared["created_at"])
        shared.update(period=connection.ops.adapt_datefield_value(batch.period), created_at=created)
        rows = [
            [shared[f.attname] if f.attname in shared else getattr(d, f.attname) for f in _LINE_FIELDS] for d in drafts
        ]
        placeholders = "(" + ", ".join(["%s"] * len(_LINE_FIELDS)) + ")"
        with connection.cursor() as cursor:
            for start in range(0, len(rows), _INSERT_ROWS):
                part = rows[start : start + _INSERT_ROWS]
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([placeholders] * len(part)),
                    [value for row in part for value in row],
                )
    return drafts


def _line_types() -> list[str]:
    """The lines' column types as binary COPY names them ("varchar(8)" is a varchar)."""
    return [f.db_type(connection).split("(")[0] for f in _LINE_FIELDS]


_INSERT_ROWS = 500  # 500 x 26 parameters: under SQLite's limit per statement


def _held_reason(merchant_status: str, burned: int, token, payee) -> str:
    """Why a merchant's line is held rather than paid ("" if it is paid), given its locked accounts."""
    if merchant_status != Merchant.Status.ACTIVE:
        return HeldReason.MERCHANT_FROZEN
    if token.status != Account.Status.ACTIVE or payee.status != Account.Status.ACTIVE:
        return HeldReason.ACCOUNT_FROZEN
    if burned < 0:
        return HeldReason.REFUNDS_EXCEED_RECEIPTS
    if burned > token.available:  # cannot happen while the ranges hold; refuse rather than overdraw
        return HeldReason.INSUFFICIENT_TOKENS
    return ""


_MERCHANT_FIELDS = ("id", "status", "annual_revenue", "token_account_id", "settlement_account_id")


def _lock_merchant_range(first: int, last: int) -> list[tuple]:
    """Lock the rows of the merchants with ids from `first` to `last`, in id order
    (voucher.services.common's lock order); each as (id, status, annual revenue,
    token account, settlement account)."""
    if connection.vendor != "postgresql":
        merchants = Merchant.objects.select_for_update(no_key=True).filter(pk__range=(first, last)).order_by("pk")
        return list(merchants.values_list(*_MERCHANT_FIELDS))
    sql = f"""SELECT {", ".join(_MERCHANT_FIELDS)} FROM voucher_merchant WHERE id BETWEEN %s AND %s
              ORDER BY id FOR NO KEY UPDATE"""
    return _rows(sql, [first, last])


def _settled_in(batch: SettlementBatch, merchant_ids: list[int]) -> set[int]:
    """Which of the merchants already have a line in the batch."""
    if connection.vendor != "postgresql":
        lines = SettlementLine.objects.filter(batch=batch, merchant_id__in=merchant_ids).order_by()
        return set(lines.values_list("merchant_id", flat=True))
    sql = "SELECT merchant_id FROM voucher_settlementline WHERE batch_id = %s AND merchant_id = ANY(%s::bigint[])"
    return {merchant_id for (merchant_id,) in _rows(sql, [batch.pk, int_array(merchant_ids)])}


def _watermarks(merchant_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per merchant: the sequence of its last paid line and where each kind's range ended (0, 0... if none)."""
    none_yet = {"sequence": 0, **dict.fromkeys(KINDS, 0)}  # shared, read-only
    marks = dict.fromkeys(merchant_ids, none_yet)
    throughs = ", ".join(f"{kind}_through" for kind in KINDS)
    if connection.vendor == "postgresql":  # each merchant's newest paid line, from the (merchant, sequence) index
        rows = _rows(
            f"""SELECT DISTINCT ON (merchant_id) merchant_id, sequence, {throughs} FROM voucher_settlementline
                WHERE merchant_id = ANY(%s::bigint[]) AND sequence IS NOT NULL ORDER BY merchant_id, sequence DESC""",
            [int_array(merchant_ids)],
        )
        for merchant_id, sequence, *through in rows:
            marks[merchant_id] = {"sequence": sequence, **dict(zip(KINDS, through, strict=True))}
        return marks
    last = SettlementLine.objects.filter(
        merchant_id__in=merchant_ids,
        sequence__isnull=False,
        sequence=Subquery(_latest_paid_line(OuterRef("merchant_id")).values("sequence")),
    ).order_by()
    for row in last.values("merchant_id", "sequence", *(f"{kind}_through" for kind in KINDS)):
        marks[row["merchant_id"]] = {"sequence": row["sequence"], **{k: row[f"{k}_through"] for k in KINDS}}
    return marks


def _new_rows(kind: str, starts: dict[int, int], cutoff) -> dict[int, tuple[int, int, int]]:
    """Per merchant: (through, count, sum) of its rows of `kind` above its start id;
    with a cutoff, up to the last one created before it. One pass for the chunk."""
    if not starts:
        return {}
    rows = _aggregate(kind, starts, cutoff)
    found = {m: (through, count, total) for m, through, count, total, _ in rows if through is not None}
    # Rows are written in id order under the merchant's lock, so created_at rises
    # with the id; should a clock step back, a late row could sit below `through`.
    # Everything up to `through` is covered, so such a merchant is summed exactly.
    skewed = {m: starts[m] for m, through, _, _, first_late in rows if through and first_late and first_late < through}
    if skewed:
        for m, through in ((m, found[m][0]) for m in skewed):
            [(_, _, count, total, _)] = _aggregate(kind, {m: skewed[m]}, None, through=through)
            found[m] = (through, count, total)
    return found


def _aggregate(kind: str, starts: dict[int, int], cutoff, through: int | None = None) -> list[tuple]:
    """(merchant, last id before the cutoff, count and sum up to it, first id at or after it)."""
    model, merchant_column, join = _SOURCES[kind]
    table = f"{model._meta.db_table} r {join.format(payment=Payment._meta.db_table)}"
    postgresql = connection.vendor == "postgresql"
    if postgresql:  # two array parameters instead of two per merchant
        pairs = "SELECT * FROM unnest(%s::bigint[], %s::bigint[])"
        params: list = [int_array(starts), int_array(starts.values())]
    else:
        pairs = "VALUES " + ", ".join(["(%s, %s)"] * len(starts))
        params = [value for pair in starts.items() for value in pair]
    early = "r.created_at < %s" if cutoff else "1 = 1"
    figures = f"""max(r.id) FILTER (WHERE {early}), count(*) FILTER (WHERE {early}),
               sum(r.amount) FILTER (WHERE {early}), min(r.id) FILTER (WHERE NOT ({early}))"""
    if cutoff:
        params += [connection.ops.adapt_datetimefield_value(cutoff)] * 4
    upper = ""
    if through is not None:
        upper = " AND r.id <= %s"
        params.append(through)
    if postgresql and not join:
        # One index range scan per merchant on (merchant, id), from its watermark:
        # reads only what is new. Left to itself the planner hashes the whole table.
        sql = f"""
            WITH w (merchant_id, after_id) AS ({pairs})
            SELECT w.merchant_id, new.* FROM w CROSS JOIN LATERAL (
                SELECT {figures} FROM {table}
                WHERE {merchant_column} = w.merchant_id AND r.id > w.after_id{upper}
            ) new"""
    else:
        params.append(min(starts.values()))  # refunds are few: read them from the lowest watermark on
        sql = f"""
            WITH w (merchant_id, after_id) AS ({pairs})
            SELECT w.merchant_id, {figures}
            FROM {table} JOIN w ON {merchant_column} = w.merchant_id AND r.id > w.after_id
            WHERE r.id > %s{upper}
            GROUP BY w.merchant_id"""
        if upper:  # the upper bound's parameter comes after the lower one here
            params[-2], params[-1] = params[-1], params[-2]
    return [
        (m, last, int(count), int(total or 0), first_late) for m, last, count, total, first_late in _rows(sql, params)
    ]


def _rows(sql: str, params: list) -> list[tuple]:
    """Run a query whose parameters include arrays of a chunk's size. On
    PostgreSQL as a prepared statement with server-side binding
    (bank.prepared), not quoted into the SQL one element at a time as Django's
    cursor does; logged and counted like any other query. Arrays of ids go
    as text (bank.prepared.int_array)."""
    if connection.vendor == "postgresql":
        return prepared.fetch(sql, params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- what the portal shows before a settlement ------------------------------------------------


def estimate_next_settlement(merchant: Merchant) -> dict:
    """What settling the merchant now would pay, at the daily rate: gross,
    refunds, merchant-to-merchant in and out, fee and net. Reads only."""
    starts = _watermarks([merchant.pk])[merchant.pk]
    got = {kind: _new_rows(kind, {merchant.pk: starts[kind]}, None).get(merchant.pk, (0, 0, 0)) for kind in KINDS}
    gross, refunded, received, paid_out = (got[kind][2] for kind in KINDS)
    burned = max(0, gross + received - refunded - paid_out)
    rate = fee_rate_bp(merchant, seoul_today())
    fee = fee_for(burned, rate)
    return {
        "payment_count": got["payments"][1],
        "gross": gross,
        "refunds": refunded,
        "from_merchants": received,
        "to_merchants": paid_out,
        "fee_rate_bp": rate,
        "fee": fee,
        "net": burned - fee,
    }
