"""verify_ledger against its floor, and its peak memory as the ledger grows.

The floor is the least work any one-pass verifier does: read every entry and
posting row once, in ledger order (each entry's postings together, entries
in block order, which is what lets a verifier stream with flat memory), and
SHA-256 the bytes. It is one COPY of the same rows out of PostgreSQL, each
chunk fed to hashlib, with nothing decoded.
"""

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.scratch import Server

FLOOR_SQL = """
COPY (
    SELECT e.id, e.block_id, e.hash, e.uid, e.created_at, e.kind, e.memo, e.reference, e.reverses_id,
           p.account_id, p.currency, p.amount
    FROM bank_journalentry e JOIN bank_posting p ON p.entry_id = e.id
    ORDER BY e.block_id, e.id, p.id
) TO STDOUT
"""


@dataclass(frozen=True)
class Floor:
    seconds: float
    megabytes: float


@dataclass(frozen=True)
class Verified:
    seconds: float
    cpu_seconds: float
    backend_cpu_seconds: float | None
    baseline_rss_mb: float | None
    peak_rss_mb: float
    peak_is_verify_only: bool
    entries: int
    blocks: int
    ok: bool
    first_failure: str | None


def floor(server: Server, dbname: str) -> Floor:
    digest = hashlib.sha256()
    size = 0
    with server.connect(dbname) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(FLOOR_SQL) as copy:
            for chunk in copy:
                digest.update(chunk)
                size += len(chunk)
        seconds = time.perf_counter() - started
    return Floor(seconds=seconds, megabytes=size / 1e6)


def verify_in_child(server: Server, dbname: str) -> Verified:
    """verify_ledger in a fresh process on `dbname`: its wall time and peak RSS."""
    env = dict(os.environ, DATABASE_URL=server.url_for(dbname))
    done = subprocess.run(
        [sys.executable, "-m", "bench.verify_child"],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError("verify_ledger's process failed (its traceback is above)")
    return Verified(**json.loads(done.stdout.strip().splitlines()[-1]))
