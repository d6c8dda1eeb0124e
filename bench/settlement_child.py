"""Settle yesterday once in a process of its own and print one JSON line: the
settlement's wall time and peak RSS, and the time of one raw GROUP BY over the
same payment rows, measured just before it in the same process.

`python -m bench.settlement_child` with DATABASE_URL set to a copy of a
settlement template (bench/settlement.py).
"""

import itertools
import json
import os
import resource
import sys
import time
from datetime import timedelta


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.db.backends.signals import connection_created

    from bench.verify_child import _reset_peak_rss, _rss_kib
    from voucher import services
    from voucher.clock import day_bounds, seoul_today
    from voucher.selectors import batch_reconciliation

    settings.DEBUG = False
    day = seoul_today() - timedelta(days=1)
    cutoff = day_bounds(day)[1]
    groupby_sql = (
        "SELECT merchant_id, count(*), sum(amount) FROM voucher_payment WHERE created_at < %s GROUP BY merchant_id"
    )
    timings = []
    with connection.cursor() as cursor:
        for _ in range(3):  # the first warms the cache; the figure is the best of the other two
            started = time.perf_counter()
            cursor.execute(groupby_sql, [cutoff])
            rows = cursor.fetchall()
            timings.append(time.perf_counter() - started)
    groupby_seconds = min(timings[1:])
    payments = sum(row[1] for row in rows)

    queries = itertools.count()

    def count(execute, sql, params, many, context):
        next(queries)  # atomic under the GIL: settling threads share the counter
        return execute(sql, params, many, context)

    def count_on(sender, connection, **kwargs):  # the settling threads' own connections
        connection.execute_wrappers.append(count)

    peak_was_reset = _reset_peak_rss()
    baseline = _rss_kib()
    started = time.perf_counter()
    connection_created.connect(count_on)
    with connection.execute_wrapper(count):
        batch = services.settle_day(day=day)
    settle_seconds = time.perf_counter() - started
    connection_created.disconnect(count_on)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = batch_reconciliation(batch)
    print(
        json.dumps(
            {
                "payments": payments,
                "merchants": len(rows),
                "settle_seconds": settle_seconds,
                "groupby_seconds": groupby_seconds,
                "peak_rss_mb": peak / 1024 if peak_was_reset else peak / 1024,
                "baseline_rss_mb": baseline / 1024 if baseline else None,
                "paid": batch.paid_count,
                "net": batch.net,
                "fees": batch.fees,
                "reconciled": bool(report["balanced"]) and batch.payment_count == payments,
                "queries": next(queries),
                "entries": batch.lines.exclude(entry=None).values("entry_id").distinct().count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
