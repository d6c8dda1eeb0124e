"""What a payment reads and writes, the one place where it differs per database:
the snapshot it is checked against, read after the wallet's lock, and the insert
of the Payment with its PaymentLot rows (and its audit row). No rule lives here:
voucher.services.payments checks and decides, the same on every database.

On PostgreSQL the snapshot costs one round trip of two statements, sent together
in pipeline mode and run in order:

1. lock the wallet row;
2. after that lock, in one snapshot: the merchant, the pause flag, the limits of
   the day, whether any cashback program is active, an earlier payment under
   the key, today's spending, and the wallet's live lots. When the payment will
   go on to spend without cashback, the lots' ledger accounts and the merchant's
   token account are locked in id order in the same statement.

Statement 2 must be a statement of its own, after statement 1: a statement
reads one snapshot, taken when it starts, so the payments and lots another
transaction committed while we waited for the wallet lock are only visible to
the next statement (PostgreSQL runs the two in order).

While a cashback program is active statement 2 lists the lots without locking
their accounts: the writer locks the programs first and then every account at
once, in the documented order (voucher.services.common). Other databases read
the same snapshot through the ORM and never lock accounts here.

The PostgreSQL statements are prepared (bank.prepared): building the ORM's
queries cost more than running them.
"""

import json
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from bank.models import Account, AuditEvent, JournalEntry
from bank.prepared import Columns, fetch, fetch_together
from bank.services import payments_paused, record_audit
from voucher.clock import day_bounds
from voucher.limits import DEFAULT_LIMITS, Limits, limits_on
from voucher.models import Lot, Merchant, Payment, PaymentLot, VoucherProgram, Wallet, WalletHold
from voucher.services.merchant_lock import note_accounts_locked, require_merchant_locked

PAYMENT_AUDIT_ACTION = "payment.create"


@dataclass
class PaymentSnapshot:
    """What a payment is checked against, read after its wallet's lock."""

    wallet: Wallet | None  # None: no such wallet
    merchant: Merchant | None  # None: no such merchant
    earlier_id: int | None  # the payment already made under the key
    paused: bool
    cashback_active: bool  # some cashback program is active (it may not pay at this merchant)
    spent_today: int
    limits: Limits
    lots: list[Lot]  # the live lots with a balance, any order, each with its program
    # Each lot's available balance when the read locked the lots' and the
    # merchant's accounts; None when the writer must lock them itself.
    balances: dict[int, int] | None


def read_payment(*, wallet_id: int, merchant_id: int, idempotency_key: str, day) -> PaymentSnapshot:
    """Lock the wallet and read the payment's snapshot. Runs inside the payment's transaction."""
    if connection.vendor == "postgresql":
        return _read_postgresql(wallet_id, merchant_id, idempotency_key, day)
    return _read_generic(wallet_id, merchant_id, idempotency_key, day)


@dataclass(frozen=True)
class NewPayment:
    """A payment whose entry is posted, to be written: by pay(), or by a hold's capture."""

    wallet: Wallet
    merchant: Merchant
    amount: int
    reference: str
    idempotency_key: str
    entry: JournalEntry
    taken: list[tuple[Lot, int]]  # (lot, amount taken from it), in spend order
    cashback_amount: int = 0
    cashback_lot: Lot | None = None
    acting_user: object = None  # a User: writes the payment's audit row; None writes none
    audit_after: dict = field(default_factory=dict)


def insert_payment(new: NewPayment) -> Payment:
    """Write the Payment, its PaymentLot rows in spend order, and, when a person
    acted, its audit row."""
    if connection.vendor == "postgresql":
        return _insert_postgresql(new)
    return _insert_generic(new)


def _insert_generic(new: NewPayment) -> Payment:
    require_merchant_locked([new.merchant.token_account_id])
    payment = Payment.objects.create(
        wallet=new.wallet,
        merchant=new.merchant,
        amount=new.amount,
        reference=new.reference,
        idempotency_key=new.idempotency_key,
        entry=new.entry,
        cashback_amount=new.cashback_amount,
        cashback_lot=new.cashback_lot,
    )
    PaymentLot.objects.bulk_create(
        PaymentLot(payment=payment, lot=lot, amount=take, spend_order=index)
        for index, (lot, take) in enumerate(new.taken)
    )
    if new.acting_user is not None:
        record_audit(actor=new.acting_user, action=PAYMENT_AUDIT_ACTION, target=payment, after=new.audit_after)
    return payment


# --- every database but PostgreSQL: the ORM ----------------------------------------------------


def committed_today(wallet_id: int, day) -> int:
    """What counts against the wallet's daily limit on `day`: its payments, and the
    holds authorised that day still open (a captured one is a payment by then)."""
    start, end = day_bounds(day)
    paid = Payment.objects.filter(wallet_id=wallet_id, created_at__gte=start, created_at__lt=end)
    held = WalletHold.objects.filter(
        wallet_id=wallet_id,
        status=WalletHold.Status.OPEN,
        created_at__gte=start,
        created_at__lt=end,
        expires_at__gt=timezone.now(),
    )
    return sum(rows.aggregate(total=Sum("amount"))["total"] or 0 for rows in (paid, held))


def _read_generic(wallet_id, merchant_id, idempotency_key, day) -> PaymentSnapshot:
    # NO KEY UPDATE, as voucher.services.common._locked.
    wallet = Wallet.objects.select_for_update(of=("self",), no_key=True).filter(pk=wallet_id).first()
    lots = Lot.objects.select_related("account", "program").filter(
        wallet_id=wallet_id, status=Lot.Status.ACTIVE, expires_on__gte=day, account__balance__gt=0
    )
    return PaymentSnapshot(
        wallet=wallet,
        merchant=Merchant.objects.filter(pk=merchant_id).first(),
        earlier_id=Payment.objects.filter(wallet_id=wallet_id, idempotency_key=idempotency_key)
        .values_list("pk", flat=True)
        .first(),
        paused=payments_paused(),
        cashback_active=VoucherProgram.objects.filter(
            kind=VoucherProgram.Kind.CASHBACK, status=VoucherProgram.Status.ACTIVE
        ).exists(),
        spent_today=committed_today(wallet_id, day),
        limits=limits_on(day),
        lots=list(lots),
        balances=None,
    )


# --- PostgreSQL: prepared plain SQL ------------------------------------------------------------

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
_OPEN_HOLD = WalletHold.Status.OPEN.value
_LIVE_LOT = f"l.wallet_id = %(wallet)s AND l.status = '{_ACTIVE_LOT}' AND l.expires_on >= %(day)s"

# One row per account (the live lots' accounts, with their lot and program, and
# the merchant's token account without), or one row of NULLs after the head when
# there is none; every row carries the head. Accounts are locked (`locked`) only
# when this payment will go on to spend without cashback; with a cashback program
# active they are listed unlocked (`listed`) for the writer to lock after the
# programs; a replay or an unknown merchant reads neither.
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
        ) + (
            -- open holds count against the day's limit as committed_today says
            SELECT COALESCE(SUM(amount), 0) FROM voucher_wallethold
            WHERE wallet_id = %(wallet)s AND status = '{_OPEN_HOLD}' AND created_at >= %(day_start)s
                AND created_at < %(day_end)s AND expires_at > %(now)s
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
        WHERE {_LIVE_LOT} AND b.balance > 0
        UNION ALL
        SELECT token_account_id FROM voucher_merchant WHERE id = %(merchant)s
    ))
    AND (SELECT earlier IS NULL AND NOT cashback AND merchant_found FROM head)
    ORDER BY a.id
    FOR NO KEY UPDATE
), listed AS MATERIALIZED (
    SELECT {_ACCOUNT.select("a")} FROM voucher_lot AS l JOIN bank_account AS a ON a.id = l.account_id
    WHERE {_LIVE_LOT} AND a.balance > 0
    AND (SELECT earlier IS NULL AND cashback AND merchant_found FROM head)
)
SELECT head.*, {_ACCOUNT.select("accounts")}, {_LOT.select("l")}, {_PROGRAM.select("p")}
FROM head
LEFT JOIN (SELECT * FROM locked UNION ALL SELECT * FROM listed) AS accounts ON true
LEFT JOIN voucher_lot AS l ON l.account_id = accounts.id AND l.wallet_id = %(wallet)s
LEFT JOIN voucher_voucherprogram AS p ON p.id = l.program_id
"""
_HEAD_WIDTH = 6 + len(_MERCHANT) + len(_LIMIT_FIELDS)

# The payment, the lots it spent in spend order, and its audit row when a person
# acted, in one statement.
_INSERT_SQL = f"""
WITH payment AS (
    INSERT INTO voucher_payment (wallet_id, merchant_id, amount, refunded_amount, reference, idempotency_key,
                                 entry_id, cashback_amount, cashback_lot_id, cashback_clawed_back, created_at)
    VALUES (%(wallet)s, %(merchant)s, %(amount)s, 0, %(reference)s, %(key)s, %(entry)s, %(cashback)s,
            %(cashback_lot)s, 0, %(created_at)s)
    RETURNING id
), lot AS (
    INSERT INTO voucher_paymentlot (payment_id, lot_id, amount, refunded_amount, spend_order)
    SELECT payment.id, taken.lot_id, taken.amount, 0, taken.n - 1
    FROM payment, unnest(%(lots)s::bigint[], %(amounts)s::bigint[]) WITH ORDINALITY AS taken(lot_id, amount, n)
    RETURNING id, spend_order
), audit AS (
    INSERT INTO {AuditEvent._meta.db_table} (actor_id, actor_label, action, target_type, target_id, reason, before,
                                             after, at)
    SELECT %(actor)s::bigint, %(actor_label)s::text, '{PAYMENT_AUDIT_ACTION}', '{Payment.__name__}', payment.id::text,
           '', NULL, %(audit_after)s::jsonb, %(created_at)s
    FROM payment WHERE %(audited)s::boolean
)
SELECT (SELECT id FROM payment), id FROM lot ORDER BY spend_order
"""


def _read_postgresql(wallet_id, merchant_id, idempotency_key, day) -> PaymentSnapshot:
    day_start, day_end = day_bounds(day)
    # Sent together, run one after the other: the second reads after the wallet lock (see above).
    wallet_rows, rows = fetch_together(
        (_LOCK_WALLET_SQL, {"wallet": wallet_id}),
        (
            _READ_AND_LOCK_SQL,
            {
                "wallet": wallet_id,
                "key": idempotency_key,
                "merchant": merchant_id,
                "day": day,
                "day_start": day_start,
                "day_end": day_end,
                "now": timezone.now(),
            },
        ),
    )
    earlier_id, paused, cashback, spent, merchant_found = rows[0][:5]
    head = rows[0][:_HEAD_WIDTH]
    limits_at = 5 + len(_MERCHANT)
    lots, balances = _lots(rows)
    merchant = _MERCHANT.build(head[5:limits_at]) if merchant_found else None
    locked = earlier_id is None and not cashback and merchant_found
    if locked:  # statement 2 locked the lots' accounts and the merchant's token account
        note_accounts_locked([*balances, merchant.token_account_id])
    return PaymentSnapshot(
        wallet=_WALLET.build(wallet_rows[0]) if wallet_rows else None,
        merchant=merchant,
        earlier_id=earlier_id,
        paused=paused,
        cashback_active=cashback,
        spent_today=spent,
        limits=Limits(*head[limits_at + 1 :]) if head[limits_at] else DEFAULT_LIMITS,
        lots=lots,
        balances=balances if locked else None,
    )


def _lots(rows: list[tuple]) -> tuple[list[Lot], dict[int, int]]:
    """The lots of statement 2's rows, each with its account and its program when
    it has one, and what each lot's account has available."""
    account_end = _HEAD_WIDTH + len(_ACCOUNT)
    lot_end = account_end + len(_LOT)
    lots, balances = [], {}
    for row in rows:
        if row[account_end] is None:
            continue  # the merchant's token account, or no account read
        account = _ACCOUNT.build(row[_HEAD_WIDTH:account_end])
        lot = _LOT.build(row[account_end:lot_end])
        lot.account = account
        lot.program = _PROGRAM.build(row[lot_end:]) if lot.program_id is not None else None
        lots.append(lot)
        balances[lot.account_id] = account.available
    return lots, balances


def _insert_postgresql(new: NewPayment) -> Payment:
    """The returned Payment has its merchant, entry, lots and (no) refunds in
    memory, as the API renders them."""
    require_merchant_locked([new.merchant.token_account_id])
    created_at = timezone.now()
    rows = fetch(
        _INSERT_SQL,
        {
            "wallet": new.wallet.pk,
            "merchant": new.merchant.pk,
            "amount": new.amount,
            "reference": new.reference,
            "key": new.idempotency_key,
            "entry": new.entry.pk,
            "cashback": new.cashback_amount,
            "cashback_lot": new.cashback_lot.pk if new.cashback_lot else None,
            "created_at": created_at,
            "lots": [lot.pk for lot, _ in new.taken],
            "amounts": [take for _, take in new.taken],
            "audited": new.acting_user is not None,
            "actor": new.acting_user.pk if new.acting_user is not None else None,
            "actor_label": new.acting_user.get_username() if new.acting_user is not None else None,
            "audit_after": json.dumps(new.audit_after) if new.acting_user is not None else None,
        },
    )
    payment = Payment(
        id=rows[0][0],
        wallet=new.wallet,
        merchant=new.merchant,
        amount=new.amount,
        refunded_amount=0,
        reference=new.reference,
        idempotency_key=new.idempotency_key,
        entry=new.entry,
        cashback_amount=new.cashback_amount,
        cashback_lot=new.cashback_lot,
        cashback_clawed_back=0,
        created_at=created_at,
    )
    payment._state.adding = False
    payment._state.db = connection.alias
    lots = []
    for (_, lot_row_id), (lot, take) in zip(rows, new.taken, strict=True):
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
