"""pgbench's built-in TPC-B-like script on the same server: the yardstick for the ledger.

Each of its transactions updates an account, a teller and a branch, reads the
account back and appends a history row: five statements plus BEGIN and END,
about what one two-leg transfer does. The scale factor is the largest client
count, as pgbench's documentation asks, so its clients do not all queue on
one branch row.
"""

import re
import shutil
import subprocess

from bench.scratch import Missing, Server

SCALE = 4
_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def require() -> str:
    path = shutil.which("pgbench")
    if path is None:
        raise Missing(
            "pgbench is not installed; the ledger's figures are ratios to it. "
            "Install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-contrib or postgresql)."
        )
    return path


def initialize(server: Server, dbname: str) -> None:
    _pgbench(server, dbname, ["-i", "-q", "-s", str(SCALE)])


def tps(server: Server, dbname: str, *, clients: int, threads: int, seconds: int) -> float:
    output = _pgbench(server, dbname, ["-c", str(clients), "-j", str(threads), "-T", str(max(1, seconds))])
    match = _TPS.search(output)
    if not match:
        raise RuntimeError(f"could not read pgbench's TPS from:\n{output}")
    return float(match.group(1))


def _pgbench(server: Server, dbname: str, args: list[str]) -> str:
    done = subprocess.run(
        [require(), *args, dbname], env=server.libpq_env(dbname), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout + done.stderr
