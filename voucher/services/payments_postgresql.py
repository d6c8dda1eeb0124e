"""A payment's hot path on PostgreSQL, in plain SQL: the same checks in the same
order as voucher.services.payments.pay's ORM path, in three round trips of its
own plus the ledger's, instead of a dozen queries (building the ORM's queries
cost more than running them).

1. lock the wallet row;
2. after that lock, in one snapshot: the merchant, the pause flag, the limits of
   the day, whether any cashback program is active, an earlier payment under
   the key, today's spending, and the wallet's live lots with their ledger
   accounts (and the merchant's token account) locked in id order;
3. post the entry (bank.services.post_entry, which locks and writes the ledger);
4. insert the Payment and its PaymentLot rows.

Statement 2 must be a statement of its own, after statement 1: a statement
reads one snapshot, taken when it starts, so the payments and lots another
transaction committed while we waited for the wallet lock are only visible to
the next statement. The two are sent together in one round trip (the second
does not need the first's rows), and PostgreSQL runs them in order.

A payment that could earn cashback (any active cashback program) takes the ORM
path instead: it locks programs, reads rules and caps, and may open a lot, and
those locks must come before the account locks. Statement 2 then locks no
account, so the ORM path can still take them in the documented order.
"""

from django.db import connection
from django.utils import timezone

from bank import errors as bank_errors
from bank.models import Account
from bank.prepared import Columns, fetch, fetch_together
from voucher import errors
from voucher.clock import day_bounds, seoul_today
from voucher.limits import DEFAULT_LIMITS, Limits
from voucher.models import Lot, Merchant, Payment, PaymentLot, VoucherProgram, Wallet
from voucher.services.common import check_merchant_active, check_wallet_active
from voucher.services.lots import eligible_at, spend_order
from voucher.services.payment_entry import post_payment_entry, take_from_lots

NEEDS_ORM_PATH = None  # what pay_fast returns when a cashback program is active


_WALLET = Columns(Wallet)
_MERCHANT = Columns(Merchant)
_ACCOUNT = Columns(Account)
_LIMIT_FIELDS = tuple(Limits.__dataclass_fields__)
# What choosing and spending a lot reads: spend order, eligibility at the merchant.
_LOT = Columns(Lot, {"id", "wallet_id", "program_id", "expires_on", "account_id", "status"})
_PROGRAM = Columns(
    VoucherProgram,
    {"id", "excluded_categories", "eligible_categories", "eligible_districts", "max_merchant_annual_revenue"},
)


# NO KEY UPDATE, as voucher.services.common._locked: the wallet's key never changes,
# and rows that point at it (a new Payment) may take their share locks meanwhile.
_LOCK_WALLET_SQL = (
    f"SELECT {_WALLET.select('voucher_wallet')} FROM voucher_wallet WHERE id = %(wallet)s FOR NO KEY UPDATE"
)

_CASHBACK = VoucherProgram.Kind.CASHBACK.value
_ACTIVE_PROGRAM = VoucherProgram.Status.ACTIVE.value
_ACTIVE_LOT = Lot.Status.ACTIVE.value

# One row per locked account (the live lots' accounts, with their lot and
# program, and the merchant's token account without), or one row of NULLs after
# the head when nothing is locked; every row carries the head. Accounts are
# locked only when this payment will go on to spend (no replay, no cashback
# program): a replay locks nothing, and the cashback path locks them itself.
_READ_AND_LOCK_SQL = f"""
WITH head AS MATERIALIZED (
    SELECT
        (SELECT id FROM voucher_payment WHERE wallet_id = %(wallet)s AND idempotency_key = %(key)s) AS earlier,
        EXISTS (SELECT 1 FROM bank_controlstate WHERE id = 1 AND payments_paused) AS paused,
        EXISTS (
            SELECT 1 FROM voucher_voucherprogram WHERE kind = '{_CASHBACK}' AND status = '{_ACTIVE_PROGRAM}'
        ) AS cashback,
        (
            SELECT COALESCE(SUM(amount), 0) FROM voucher_payment
            WHERE wallet_id = %(wallet)s AND created_at >= %(day_start)s AND created_at < %(day_end)s
        ) AS spent,
        m.id IS NOT NULL AS merchant_found, {_MERCHANT.select("m")},
        r.id IS NOT NULL AS limits_found, {", ".join(f"r.{name}" for name in _LIMIT_FIELDS)}
    FROM (SELECT 1) AS one
    LEFT JOIN voucher_merchant AS m ON m.id = %(merchant)s
    LEFT JOIN LATERAL (
        SELECT * FROM voucher_walletlimitrule WHERE effective_from <= %(day)s ORDER BY effective_from DESC LIMIT 1
    ) AS r ON true
), locked AS MATERIALIZED (
    SELECT {_ACCOUNT.select("a")} FROM bank_account AS a
    WHERE a.id = ANY (ARRAY(
        SELECT l.account_id FROM voucher_lot AS l JOIN bank_account AS b ON b.id = l.account_id
        WHERE l.wallet_id = %(wallet)s AND l.status = '{_ACTIVE_LOT}' AND l.expires_on >= %(day)s AND b.balance > 0
        UNION ALL
        SELECT token_account_id FROM voucher_merchant WHERE id = %(merchant)s
    ))
    AND (SELECT earlier IS NULL AND NOT cashback AND merchant_found FROM head)
    ORDER BY a.id
    FOR NO KEY UPDATE
)
SELECT head.*, {_ACCOUNT.select("locked")}, {_LOT.select("l")}, {_PROGRAM.select("p")}
FROM head
LEFT JOIN locked ON true
LEFT JOIN voucher_lot AS l ON l.account_id = locked.id AND l.wallet_id = %(wallet)s
LEFT JOIN voucher_voucherprogram AS p ON p.id = l.program_id
"""
_HEAD_WIDTH = 6 + len(_MERCHANT) + len(_LIMIT_FIELDS)

# The payment and the lots it spent, in spend order, in one statement.
_INSERT_SQL = """
WITH payment AS (
    INSERT INTO voucher_payment (wallet_id, merchant_id, amount, refunded_amount, reference, idempotency_key,
                                 entry_id, cashback_amount, cashback_lot_id, cashback_clawed_back, created_at)
    VALUES (%(wallet)s, %(merchant)s, %(amount)s, 0, %(reference)s, %(key)s, %(entry)s, 0, NULL, 0, %(created_at)s)
    RETURNING id
), lot AS (
    INSERT INTO voucher_paymentlot (payment_id, lot_id, amount, refunded_amount, spend_order)
    SELECT payment.id, taken.lot_id, taken.amount, 0, taken.n - 1
    FROM payment, unnest(%(lots)s::bigint[], %(amounts)s::bigint[]) WITH ORDINALITY AS taken(lot_id, amount, n)
    RETURNING id, spend_order
)
SELECT (SELECT id FROM payment), id FROM lot ORDER BY spend_order
"""


def pay_fast(*, wallet: Wallet, merchant: Merchant, amount: int, idempotency_key: str, reference: str):
    """pay() on PostgreSQL, inside a transaction, for its checked inputs. Returns
    the Payment, or NEEDS_ORM_PATH (having locked only the wallet) when a cashback
    program is active.

    Writes nothing before its last check (post_entry's own savepoint covers the
    ledger's writes), so pay() runs it without a savepoint of its own: keep
    every refusal before the first write."""
    day = seoul_today()
    day_start, day_end = day_bounds(day)
    # Sent together, run one after the other: the second reads after the wallet lock (see above).
    wallet_rows, rows = fetch_together(
        (_LOCK_WALLET_SQL, {"wallet": wallet.pk}),
        (
            _READ_AND_LOCK_SQL,
            {
                "wallet": wallet.pk,
                "key": idempotency_key,
                "merchant": merchant.pk,
                "day": day,
                "day_start": day_start,
                "day_end": day_end,
            },
        ),
    )
    if not wallet_rows:
        raise errors.InvalidRequest("No such wallet.", field="wallet")
    wallet = _WALLET.build(wallet_rows[0])
    earlier_id, paused, cashback, spent, merchant_found = rows[0][:5]
    head = rows[0][:_HEAD_WIDTH]
    if not merchant_found:
        raise Merchant.DoesNotExist("Merchant matching query does not exist.")
    merchant = _MERCHANT.build(head[5 : 5 + len(_MERCHANT)])
    if earlier_id is not None:
        earlier = Payment.objects.get(pk=earlier_id)
        if (earlier.merchant_id, earlier.amount, earlier.reference) != (merchant.pk, amount, reference):
            raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, payment=earlier.pk)
        return earlier
    if paused:
        raise bank_errors.PaymentsPaused()
    if cashback:
        return NEEDS_ORM_PATH
    check_wallet_active(wallet)
    check_merchant_active(merchant)
    limits = Limits(*head[6 + len(_MERCHANT) :]) if head[5 + len(_MERCHANT)] else DEFAULT_LIMITS
    check_limits(amount, spent, limits)

    lots, balances = _locked_lots(rows)
    lots = sorted(filter(eligible_at(merchant), lots), key=spend_order)
    taken, lines = take_from_lots(lots, balances, amount, merchant)
    entry = post_payment_entry(
        lines, wallet=wallet, merchant=merchant, reference=reference, idempotency_key=idempotency_key
    )
    return _record(wallet, merchant, amount, reference, idempotency_key, entry, taken)


def check_limits(amount: int, spent: int, limits: Limits) -> None:
    """The per-payment and daily limits, given what the wallet spent today."""
    if amount > limits.per_payment_limit:
        raise errors.OverPaymentLimit(limit=limits.per_payment_limit, requested=amount)
    if spent + amount > limits.daily_payment_limit:
        raise errors.OverDailyLimit(limit=limits.daily_payment_limit, spent_today=spent, requested=amount)


def _locked_lots(rows: list[tuple]) -> tuple[list[Lot], dict[int, int]]:
    """The lots of statement 2's rows, with their program when they have one, and
    what each lot's locked account has available."""
    account_end = _HEAD_WIDTH + len(_ACCOUNT)
    lot_end = account_end + len(_LOT)
    lots, balances = [], {}
    for row in rows:
        if row[account_end] is None:
            continue  # the merchant's token account, or no account locked
        account = _ACCOUNT.build(row[_HEAD_WIDTH:account_end])
        lot = _LOT.build(row[account_end:lot_end])
        lot.account = account
        if lot.program_id is not None:
            lot.program = _PROGRAM.build(row[lot_end:])
        else:
            lot.program = None
        lots.append(lot)
        balances[lot.account_id] = account.available
    return lots, balances


def _record(wallet, merchant, amount, reference, idempotency_key, entry, taken) -> Payment:
    """Write the Payment and its PaymentLot rows; the returned Payment has its
    merchant, entry, lots and (no) refunds in memory, as the API renders them."""
    created_at = timezone.now()
    rows = fetch(
        _INSERT_SQL,
        {
            "wallet": wallet.pk,
            "merchant": merchant.pk,
            "amount": amount,
            "reference": reference,
            "key": idempotency_key,
            "entry": entry.pk,
            "created_at": created_at,
            "lots": [lot.pk for lot, _ in taken],
            "amounts": [take for _, take in taken],
        },
    )
    payment = Payment(
        id=rows[0][0],
        wallet=wallet,
        merchant=merchant,
        amount=amount,
        refunded_amount=0,
        reference=reference,
        idempotency_key=idempotency_key,
        entry=entry,
        cashback_amount=0,
        cashback_lot=None,
        cashback_clawed_back=0,
        created_at=created_at,
    )
    payment._state.adding = False
    payment._state.db = connection.alias
    lots = []
    for (_, lot_row_id), (lot, take) in zip(rows, taken, strict=True):
        row = PaymentLot(id=lot_row_id, payment=payment, lot=lot, amount=take, refunded_amount=0, spend_order=len(lots))
        row._state.adding = False
        row._state.db = connection.alias
        lots.append(row)
    _seed_prefetch(payment, lots=lots, refunds=[])
    return payment


def _seed_prefetch(payment: Payment, **related: list) -> None:
    """Fill the related managers' caches as prefetch_related would, so that
    payment.lots.all() and payment.refunds.all() of a payment just written answer
    from memory instead of two more queries."""
    cache = payment.__dict__.setdefault("_prefetched_objects_cache", {})
    for name, objects in related.items():
        queryset = getattr(payment, name).get_queryset()
        queryset._result_cache = objects
        queryset._prefetch_done = True
        cache[name] = queryset
