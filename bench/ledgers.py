"""Sealed ledgers of a given size for the verify_ledger benchmark, cached between runs.

A ledger is built the way production builds one: accounts funded through the
posting service, transfers posted with post_entries in batches of 1,000 by
two client processes, then sealed with seal_pending_entries into blocks of
LEDGER_MAX_ENTRIES_PER_BLOCK entries signed by four validators. Building 1M
entries takes minutes, so the database is kept (`<name>_bench_1m`) and reused
while it still holds exactly that ledger: the same entry count, all sealed,
the same builder (BUILDER_VERSION) and hashing code, and the project's bank
migrations. Pending migrations of other apps are applied to it; a change in
the bank's schema means a rebuild.
"""

import hashlib
import math
import time
from pathlib import Path

from tqdm import tqdm

from bench.clients import Job, run_clients
from bench.fixtures import open_funded_accounts, use_validators
from bench.scratch import Server, django_database, migrate, migration_state

BUILDER_VERSION = "1"
ACCOUNTS = 10_000
BUILD_CLIENTS = 2


def ledger_database(server: Server, entries: int) -> str:
    label = f"{entries // 1_000_000}m" if entries % 1_000_000 == 0 else f"{entries // 1000}k"
    return f"{server.name}_bench_{label}"


def cached(server: Server, entries: int) -> str | None:
    """Why the cached ledger of `entries` entries cannot be reused, or None if it can."""
    dbname = ledger_database(server, entries)
    if not server.exists(dbname):
        return "there is none"
    with django_database(dbname):
        return _why_not_reusable(entries)


def ensure_ledger(server: Server, entries: int, *, rebuild: bool = False) -> tuple[str, str]:
    """The name of a database holding a sealed ledger of exactly `entries` entries,
    and how it was obtained ("reused" or "built in N s")."""
    dbname = ledger_database(server, entries)
    if not rebuild:
        reason = cached(server, entries)
        if reason is None:
            return dbname, "reused"
        print(f"  no reusable ledger in {dbname} ({reason}): building it")
    started = time.perf_counter()
    _build(server, dbname, entries)
    return dbname, f"built in {time.perf_counter() - started:.0f} s"


def _fingerprint(entries: int) -> str:
    """What the cached ledger's rows depend on: the size, how it is built (bump
    BUILDER_VERSION when the builder writes something else) and the hashing code."""
    from django.conf import settings

    from bank import hashing

    shape = f"{BUILDER_VERSION}:{entries}:{ACCOUNTS}:{BUILD_CLIENTS}:{settings.LEDGER_MAX_ENTRIES_PER_BLOCK}"
    digest = hashlib.sha256(shape.encode())
    digest.update(Path(hashing.__file__).read_bytes())
    return digest.hexdigest()


def _why_not_reusable(entries: int) -> str | None:
    from django.db import connection

    from bank.models import JournalEntry

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_ledger_cache') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return "it was never completed"
        cursor.execute("SELECT entries, fingerprint FROM bench_ledger_cache")
        row = cursor.fetchone()
    if row != (entries, _fingerprint(entries)):
        return "it was built by other code or for another size"
    applied, on_disk = migration_state()
    if applied != on_disk:
        changed = {app for app, _ in applied ^ on_disk}
        if "bank" in changed or not applied <= on_disk:
            return "the bank's migrations changed"
        migrate()  # only other apps moved on: the ledger's tables are as they were
    count = JournalEntry.objects.count()
    unsealed = JournalEntry.objects.filter(block__isnull=True).count()
    if (count, unsealed) != (entries, 0):
        return f"it holds {count} entries, {unsealed} unsealed"
    return None


def _build(server: Server, dbname: str, entries: int) -> None:
    from django.conf import settings
    from django.db import connection

    from bank.services import seal_pending_entries

    server.create_fresh(dbname)
    with django_database(dbname):
        migrate()
        use_validators()
        accounts = open_funded_accounts(min(ACCOUNTS, entries // 2))
        transfers = entries - len(accounts)
        share = [transfers // BUILD_CLIENTS + (1 if i < transfers % BUILD_CLIENTS else 0) for i in range(BUILD_CLIENTS)]
        part = len(accounts) // BUILD_CLIENTS
        jobs = [
            Job(kind="batch", accounts=tuple(accounts[i * part : (i + 1) * part]), transfers=share[i])
            for i in range(BUILD_CLIENTS)
        ]
        with tqdm(total=transfers, desc=f"posting {entries:,} entries", unit="entry", leave=False) as bar:
            run_clients(server.url_for(dbname), jobs, progress=lambda done: bar.update(done - bar.n))
        blocks = math.ceil(entries / settings.LEDGER_MAX_ENTRIES_PER_BLOCK)
        with tqdm(total=blocks, desc="sealing blocks", unit="block", leave=False) as bar:
            while seal_pending_entries(max_blocks=1):
                bar.update(1)
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_ledger_cache (entries bigint NOT NULL, fingerprint text NOT NULL)")
            cursor.execute("INSERT INTO bench_ledger_cache VALUES (%s, %s)", [entries, _fingerprint(entries)])
        connection.close()
    with server.connect(dbname) as ledger:
        ledger.execute("VACUUM (ANALYZE)")  # as autovacuum would soon: visibility map and statistics
