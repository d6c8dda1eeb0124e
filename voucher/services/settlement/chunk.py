"""One chunk of merchants, in one transaction, under their locks: what is new
for each since its last paid line, its fee, its line (paid or held), and the
ledger entries that burn the BKRW and pay the KRW."""

import logging
import random
import time
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Q, Sum

from bank.errors import AccountBusy
from bank.models import Account
from bank.services import EntryRequest, deferred_balances, post_locked
from bank.services.posting import MAX_LINES
from voucher.models import Merchant, SettlementBatch, SettlementLine
from voucher.rules.fees import fee_for, fee_schedule, rate_for_revenue, tiers_in_force
from voucher.rules.settlement import CREDITS, KINDS, new_rows, watermarks
from voucher.services.common import ledger_key, token_accounts
from voucher.services.merchant_lock import lock_ledger_account_rows
from voucher.services.settlement.fees import fee_income_account
from voucher.services.settlement.sql import insert_lines, lock_merchant_range, settled_in

logger = logging.getLogger(__name__)


class HeldReason:
    MERCHANT_FROZEN = "merchant_frozen"
    ACCOUNT_FROZEN = "account_frozen"
    REFUNDS_EXCEED_RECEIPTS = "refunds_exceed_receipts"
    INSUFFICIENT_TOKENS = "insufficient_tokens"


# A chunk that found a house account locked by a payment waiting for one of its
# merchants rolls back and runs again (bank's deferred_balances); the payment
# finishes meanwhile, so a few tries are plenty.
_BUSY_TRIES = 5


def settle_range(batch: SettlementBatch, first: int, last: int, house: "House") -> None:
    for attempt in range(1, _BUSY_TRIES + 1):
        try:
            with transaction.atomic():
                add_to_totals(batch, settle_merchants(batch, lock_merchant_range(first, last), house=house))
            return
        except AccountBusy:
            if attempt == _BUSY_TRIES:
                raise
            logger.info("settlement %s: house accounts busy, chunk retried (%d)", batch, attempt)
            time.sleep(random.uniform(0, 0.05 * attempt))


def add_to_totals(batch: SettlementBatch, drafts: list["Draft"]) -> None:
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


def refresh_totals(batch: SettlementBatch) -> None:
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


# A ledger entry holds at most bank's MAX_LINES postings: two per merchant
# (its BKRW burned, its KRW paid) and three shared (issuance, reserve, fee income).
MERCHANTS_PER_ENTRY = (MAX_LINES - 3) // 2


@dataclass(slots=True)
class Draft:
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
class House:
    """The bank's accounts every settlement entry posts to."""

    reserve: Account  # KRW out
    issuance: Account  # BKRW burned
    fees: Account  # fee income

    @classmethod
    def find(cls) -> "House":
        tokens = token_accounts()
        return cls(reserve=tokens.reserve, issuance=tokens.issuance, fees=fee_income_account())

    @property
    def accounts(self) -> list[Account]:
        return [self.reserve, self.issuance, self.fees]


def settle_merchants(
    batch: SettlementBatch, merchants: list[tuple], *, instant: bool = False, house: House | None = None
) -> list[Draft]:
    """Write a line for each merchant that has none in this batch yet, covering
    what is new since its last paid line, and post the ledger entries. Must run
    inside transaction.atomic, with `merchants` locked in it (lock_merchant_range).
    Returns the lines written."""
    ids = [pk for pk, *_ in merchants]
    have = settled_in(batch, ids)
    merchants = [row for row in merchants if row[0] not in have]  # another worker settled them while we waited
    if not merchants:
        return []
    house = house or House.find()
    # From here on no row of these merchants can commit: every writer holds these locks.
    # An instant settlement locks the house accounts with them, in id order, as a
    # payment does; a batch's chunk writes them last, so that chunks run side by side.
    accounts = lock_ledger_account_rows(
        [row[3] for row in merchants]
        + [row[4] for row in merchants]
        + ([a.pk for a in house.accounts] if instant else [])
    )
    ids = [row[0] for row in merchants]
    marks = watermarks(ids)
    new = {
        kind: new_rows(kind, {m: marks[m][kind] for m in ids}, batch.cutoff if kind in CREDITS else None)
        for kind in KINDS
    }
    tiers = tiers_in_force(batch.period, fee_schedule())
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
            rate = rates[revenue] = rate_for_revenue(revenue, tiers, instant)
        draft = Draft(
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
        return insert_lines(batch, drafts)


def _entry_request(batch, group: list[Draft], memo: str, house: "House") -> EntryRequest:
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
