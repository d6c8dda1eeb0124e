"""Run verify_ledger once in a process of its own and print one JSON line: wall
time, CPU time of this process and of its PostgreSQL backend, and resident
memory at the start and at its peak.

`python -m bench.verify_child` with DATABASE_URL set to the ledger to check.
A process of its own, so the peak RSS is verify_ledger's and nothing else's:
on Linux the high-water mark is reset after start-up (Django's imports peak
above where the process settles), so the peak is the one verify reached.
"""

import json
import os
import resource
import sys
import time


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from tqdm import tqdm

    from bank.verification import verify_ledger
    from bench.clients import process_cpu

    settings.DEBUG = False  # no query log, as in production
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [backend_pid] = cursor.fetchone()
    bar = None

    def progress(done, total):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="verify_ledger", unit="entry", leave=False, disable=not sys.stderr.isatty())
        bar.update(done - bar.n)

    peak_was_reset = _reset_peak_rss()
    baseline = _rss_kib()
    backend_before = process_cpu(backend_pid)
    cpu_before = time.process_time()
    started = time.perf_counter()
    report = verify_ledger(progress=progress)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    backend_after = process_cpu(backend_pid)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if bar is not None:
        bar.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "backend_cpu_seconds": (
                    backend_after - backend_before if None not in (backend_before, backend_after) else None
                ),
                "baseline_rss_mb": baseline / 1024 if baseline else None,
                "peak_rss_mb": peak / 1024,
                "peak_is_verify_only": peak_was_reset,
                "entries": report.entries,
                "blocks": report.blocks,
                "ok": report.ok,
                "first_failure": str(report.first_failure) if report.first_failure else None,
            }
        )
    )
    return 0


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # Linux: reset the peak-RSS high-water mark
        return True
    except OSError:
        return False


def _rss_kib() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
