"""Merchant settlement: burn the BKRW a merchant received, pay the same KRW out of
the reserve to its settlement account, less a fee by its annual-revenue tier.

Exactly once, by id ranges made exact by a lock. Every row that moves a
merchant's BKRW (a payment to it, a refund it gives, a payment between
merchants, a settlement line) is inserted by a transaction that holds the
merchant's token account locked: a checked rule, each writer calls
voucher.services.merchant_lock.require_merchant_locked before its insert, and a
test finds every writer. So while settlement holds
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

The package: the fee income account (fees; the tiers and rates are
voucher.rules.fees), the batch (batch), a chunk of merchants under their locks
(chunk), the threads that settle chunks side by side (workers), the SQL that
locks merchants and writes lines (sql), instant settlement (instant). What a
line covers is read by voucher.rules.settlement, which the portal's estimate
(voucher.selectors.estimate_next_settlement) reads too.
"""

from voucher.rules.settlement import KINDS
from voucher.selectors.settlement import estimate_next_settlement
from voucher.services.settlement.batch import RUN_PERMISSION, settle_day
from voucher.services.settlement.chunk import MERCHANTS_PER_ENTRY, HeldReason
from voucher.services.settlement.fees import FEE_INCOME_CODE, fee_for, fee_income_account, fee_rate_bp
from voucher.services.settlement.instant import settle_merchant_now

__all__ = [
    "FEE_INCOME_CODE",
    "KINDS",
    "MERCHANTS_PER_ENTRY",
    "RUN_PERMISSION",
    "HeldReason",
    "estimate_next_settlement",
    "fee_for",
    "fee_income_account",
    "fee_rate_bp",
    "settle_day",
    "settle_merchant_now",
]
