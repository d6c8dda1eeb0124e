"""Where a merchant's next settlement line starts and what is new since: the
id ranges a settlement pays (voucher.services.settlement says why they are
exact) and the portal's estimate shows. Reads only."""

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery

from bank import prepared
from bank.prepared import int_array
from voucher.models import MerchantPayment, Payment, Refund, SettlementLine

# The four kinds of rows a line covers: (model, the column naming its merchant, the join that needs).
KINDS = ("payments", "refunds", "from_merchants", "to_merchants")
SOURCES = {
    "payments": (Payment, "r.merchant_id", ""),
    "refunds": (Refund, "p.merchant_id", "JOIN {payment} p ON p.id = r.payment_id"),
    "from_merchants": (MerchantPayment, "r.payee_id", ""),
    "to_merchants": (MerchantPayment, "r.payer_id", ""),
}
CREDITS = ("payments", "from_merchants")  # counted up to the cutoff; debits up to now


def latest_paid_line(merchant) -> QuerySet[SettlementLine]:
    """The merchant's last paid line, whose `through` ids are where its next line starts."""
    return SettlementLine.objects.filter(merchant=merchant, sequence__isnull=False).order_by("-sequence")[:1]


def watermarks(merchant_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per merchant: the sequence of its last paid line and where each kind's range ended (0, 0... if none)."""
    none_yet = {"sequence": 0, **dict.fromkeys(KINDS, 0)}  # shared, read-only
    marks = dict.fromkeys(merchant_ids, none_yet)
    throughs = ", ".join(f"{kind}_through" for kind in KINDS)
    if connection.vendor == "postgresql":  # each merchant's newest paid line, from the (merchant, sequence) index
        rows = fetch_rows(
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
        sequence=Subquery(latest_paid_line(OuterRef("merchant_id")).values("sequence")),
    ).order_by()
    for row in last.values("merchant_id", "sequence", *(f"{kind}_through" for kind in KINDS)):
        marks[row["merchant_id"]] = {"sequence": row["sequence"], **{k: row[f"{k}_through"] for k in KINDS}}
    return marks


def new_rows(kind: str, starts: dict[int, int], cutoff) -> dict[int, tuple[int, int, int]]:
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
    model, merchant_column, join = SOURCES[kind]
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
        (m, last, int(count), int(total or 0), first_late)
        for m, last, count, total, first_late in fetch_rows(sql, params)
    ]


def fetch_rows(sql: str, params: list) -> list[tuple]:
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
