"""Settlement's SQL that is not a read of the ranges (voucher.rules.settlement):
the merchants in id ranges, locking a range of them, which already have a line in
a batch, and writing a chunk's lines in one statement (COPY on PostgreSQL)."""

import operator
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from bank.prepared import int_array
from voucher.models import Merchant, SettlementBatch, SettlementLine
from voucher.rules.settlement import fetch_rows
from voucher.services.merchant_lock import require_merchant_locked

if TYPE_CHECKING:
    from voucher.services.settlement.chunk import Draft


def merchant_ranges(size: int) -> list[tuple[int, int, int]]:
    """Every merchant, as (first id, last id, count) ranges of `size` merchants in id order."""
    sql = """
        SELECT min(id), max(id), count(*) FROM (
            SELECT id, (row_number() OVER (ORDER BY id) - 1) / %s AS part FROM voucher_merchant
        ) numbered GROUP BY part ORDER BY part"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [size])
        return cursor.fetchall()


_MERCHANT_FIELDS = ("id", "status", "annual_revenue", "token_account_id", "settlement_account_id")


def lock_merchant_range(first: int, last: int) -> list[tuple]:
    """Lock the rows of the merchants with ids from `first` to `last`, in id order
    (voucher.services.common's lock order); each as (id, status, annual revenue,
    token account, settlement account)."""
    if connection.vendor != "postgresql":
        merchants = Merchant.objects.select_for_update(no_key=True).filter(pk__range=(first, last)).order_by("pk")
        return list(merchants.values_list(*_MERCHANT_FIELDS))
    sql = f"""SELECT {", ".join(_MERCHANT_FIELDS)} FROM voucher_merchant WHERE id BETWEEN %s AND %s
              ORDER BY id FOR NO KEY UPDATE"""
    return fetch_rows(sql, [first, last])


def settled_in(batch: SettlementBatch, merchant_ids: list[int]) -> set[int]:
    """Which of the merchants already have a line in the batch."""
    if connection.vendor != "postgresql":
        lines = SettlementLine.objects.filter(batch=batch, merchant_id__in=merchant_ids).order_by()
        return set(lines.values_list("merchant_id", flat=True))
    sql = "SELECT merchant_id FROM voucher_settlementline WHERE batch_id = %s AND merchant_id = ANY(%s::bigint[])"
    return {merchant_id for (merchant_id,) in fetch_rows(sql, [batch.pk, int_array(merchant_ids)])}


# Every column but the id: the batch's own values, then each draft's by name.
_SHARED_FIELDS = ("batch_id", "period", "created_at")
_LINE_FIELDS = sorted(
    (f for f in SettlementLine._meta.concrete_fields if not f.primary_key),
    key=lambda f: f.attname not in _SHARED_FIELDS,  # the batch's own values first, then each draft's
)
_draft_values = operator.attrgetter(*[f.attname for f in _LINE_FIELDS if f.attname not in _SHARED_FIELDS])


def insert_lines(batch: SettlementBatch, drafts: list["Draft"]) -> list["Draft"]:
    if not drafts:
        return []
    require_merchant_locked(draft.token_account_id for draft in drafts)
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
