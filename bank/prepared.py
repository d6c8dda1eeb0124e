"""Prepared plain-SQL statements on Django's PostgreSQL connection, for hot
paths where building the query with the ORM costs more than running it.

The same technique as the posting service's own `_fetch` (bank/services/posting.py),
plus two things the API's hot path needs: the statements go through Django's
execute wrappers and are logged when Django logs queries, so query counts in
tests (django_assert_num_queries) and the benchmark's time split see them.
PostgreSQL only; callers keep an ORM path for other databases.
"""

import time
from functools import partial

import psycopg
from django.db import connection

_NEVER_BY_ITSELF = 2**62


def fetch(sql: str, params) -> list[tuple]:
    """Run one prepared statement in the current transaction and return its rows,
    raising Django's error classes."""
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    run = _execute
    for wrapper in reversed(connection.execute_wrappers):
        run = partial(wrapper, run)
    if not connection.queries_logged:
        return run(sql, params, False, {"connection": connection, "cursor": None})
    started = time.monotonic()
    try:
        return run(sql, params, False, {"connection": connection, "cursor": None})
    finally:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _execute(sql: str, params, many, context) -> list[tuple]:
    pg = connection.connection
    if pg.prepare_threshold is None:
        # Django switches psycopg's automatic preparing off, which also refuses
        # prepare=True. Allow the explicit kind; the ORM's statements are not
        # affected (its client-side-binding cursors never prepare).
        pg.prepare_threshold = _NEVER_BY_ITSELF
    with connection.wrap_database_errors, psycopg.Cursor(pg) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()  # every statement run here returns rows (a SELECT or RETURNING)


class Columns:
    """Some or all of a model's columns, and instances built from them as the ORM
    would (its from_db and its fields' from_db_value, e.g. JSONField's decoding)."""

    def __init__(self, model, attnames=None):
        fields = [f for f in model._meta.concrete_fields if attnames is None or f.attname in attnames]
        self.model = model
        self.attnames = [f.attname for f in fields]
        self.names = [f.column for f in fields]
        self.converters = [(i, f.from_db_value) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]

    def __len__(self) -> int:
        return len(self.names)

    def select(self, alias: str) -> str:
        return ", ".join(f"{alias}.{name}" for name in self.names)

    def build(self, values):
        if self.converters:
            values = list(values)
            for index, convert in self.converters:
                values[index] = convert(values[index], None, connection)
        return self.model.from_db(connection.alias, self.attnames, values)
