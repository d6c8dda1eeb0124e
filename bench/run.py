"""Run every benchmark, print the table, merge the figures into bench/results.json.

Figures that are compared are measured in the same run and take turns, because
the machine they run on is shared and its speed drifts: four rounds of pgbench
at 1 client then the ledger at 1 client, then four rounds of pgbench at 4
clients, the ledger at 4 clients and batches at 4 clients, each slot a quarter
of BENCH_SECONDS; each figure is the mean of its slots.
"""

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from bench import api, pgbench
from bench import settlement as settlement_bench
from bench.clients import Job, run_clients
from bench.fixtures import open_funded_accounts
from bench.ledgers import cached, ensure_ledger
from bench.scratch import Missing, Server, django_database, migrate
from bench.verify import floor, verify_in_child

RESULTS = Path(__file__).resolve().parent / "results.json"
DEFAULT_SECONDS = 20
POSTING_ACCOUNTS = 20_000
CLIENTS = 4
ROUNDS = 4  # comparisons take turns in slices, so a slow spell of the shared machine hits both
BIG_LEDGER, SMALL_LEDGER = 1_000_000, 100_000
GROUPS = ("posting", "verify", "settlement", "portal", "api")

# figure -> (unit, target); a target reads "higher is better" for >= and lower for <=.
FIGURES = {
    "pgbench_tps_c1": ("tx/s", ""),
    "ledger_single_transfers_per_s_c1": ("transfers/s", ""),
    "ledger_single_vs_pgbench_c1": ("ratio", ">= 0.5"),
    "pgbench_tps_c4": ("tx/s", ""),
    "ledger_single_transfers_per_s_c4": ("transfers/s", ""),
    "ledger_single_vs_pgbench_c4": ("ratio", ">= 0.5"),
    "ledger_batch_transfers_per_s_c4": ("transfers/s", ""),
    "ledger_batch_vs_pgbench_c4": ("ratio", ">= 5"),
    "ledger_hot_account_transfers_per_s_c4": ("transfers/s", ""),
    "verify_floor_seconds_1m": ("s", ""),
    "verify_seconds_1m": ("s", ""),
    "verify_vs_floor": ("ratio", "<= 2"),
    "verify_peak_mb_100k": ("MB RSS", "flat"),
    "verify_peak_mb_1m": ("MB RSS", "flat"),
    "settle_seconds_1m": ("s", ""),
    "settle_groupby_seconds_1m": ("s", ""),
    "settle_vs_groupby": ("ratio", "<= 5"),
    "settle_peak_mb_100k": ("MB RSS", "flat"),
    "settle_peak_mb_1m": ("MB RSS", "flat"),
    "portal_dashboard_p50_ms": ("ms", ""),
    "portal_dashboard_p95_ms": ("ms", "< 150"),
    "portal_dashboard_queries": ("queries", ""),
    "sig_verify_us": ("us", ""),
    "api_pay_profile_us": ("us/payment", ""),
    "api_trivial_req_per_s": ("req/s", ""),
    "api_pay_per_s": ("payments/s", ""),
    "api_pay_vs_trivial": ("ratio", ">= 0.3"),
    "api_pay_p50_ms": ("ms", ""),
    "api_pay_p99_ms": ("ms", "< 100"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=GROUPS, action="append", help="run one group (repeatable); default: all")
    parser.add_argument("--rebuild-ledgers", action="store_true", help="build the cached verify ledgers again")
    args = parser.parse_args(argv)
    groups = args.only or list(GROUPS)
    try:
        seconds = _bench_seconds()
        server = Server.from_environment()
        if "posting" in groups:
            pgbench.require()
        if "api" in groups:
            api.require()
    except Missing as missing:
        print(f"bench: cannot run.\n{missing}", file=sys.stderr)
        return 2

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # DEBUG=1 only supplies the development secret key; no query log while timing
    print(
        f"bench: PostgreSQL {_server_version(server)} at DATABASE_URL, {os.cpu_count()} CPUs, {seconds} s per timed run"
    )
    started = time.perf_counter()
    figures: dict[str, float] = {}
    notes: dict[str, str] = {}
    if "posting" in groups:
        _posting(server, seconds, figures, notes)
    if "verify" in groups:
        _verify(server, seconds, args.rebuild_ledgers, figures, notes)
    if "settlement" in groups:
        _settlement(server, seconds, args.rebuild_ledgers, figures, notes)
    if "portal" in groups:
        from bench import portal

        portal.run(server, seconds, figures, notes, _step)
    if "api" in groups:
        api.run(server, seconds, ROUNDS if seconds >= 2 * ROUNDS else 1, figures, notes, _step)
    _print_table(figures, notes)
    _merge_results(figures)
    print(f"bench: done in {time.perf_counter() - started:.0f} s; figures merged into {RESULTS}")
    return 0


def _bench_seconds() -> int:
    raw = os.environ.get("BENCH_SECONDS", "")
    if not raw:
        return DEFAULT_SECONDS
    if not raw.isdigit() or int(raw) < 1:
        raise Missing(f"BENCH_SECONDS must be a whole number of seconds >= 1, not {raw!r}.")
    return int(raw)


def _server_version(server: Server) -> str:
    with server.admin() as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


def _step(text: str) -> None:
    print(f"  {text}", flush=True)


# --- the posting service against pgbench ---------------------------------------------------


def _posting(server: Server, seconds: int, figures: dict, notes: dict) -> None:
    scratch = f"{server.name}_bench"
    rounds = ROUNDS if seconds >= 2 * ROUNDS else 1
    slot = max(1, round(seconds / rounds))
    print(
        f"posting: scratch database {scratch} (created fresh), pgbench scale {pgbench.SCALE}; each figure is "
        f"{rounds} x {slot} s, taking turns with the figure it is compared with"
    )
    server.create_fresh(scratch)
    pgbench.initialize(server, scratch)
    with django_database(scratch):
        migrate()
        accounts = tuple(open_funded_accounts(POSTING_ACCOUNTS))
        hot = accounts[0]
    url = server.url_for(scratch)
    share = len(accounts) // CLIENTS
    samples: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[tuple[float, float | None]]] = defaultdict(list)

    def ledger(figure: str, kind: str, clients: int, partitioned: bool = False) -> None:
        jobs = [
            Job(
                kind=kind,
                accounts=accounts[i * share : (i + 1) * share] if partitioned else accounts,
                hot_account=hot,
                seconds=slot,
            )
            for i in range(clients)
        ]
        result = run_clients(url, jobs)
        samples[figure].append(result.transfers_per_second)
        cpu[figure].append(result.cpu_us_per_transfer())
        _step(f"ledger {kind} x{clients}: {result.transfers_per_second:,.0f} transfers/s")

    def bench_tps(figure: str, clients: int, threads: int) -> None:
        tps = pgbench.tps(server, scratch, clients=clients, threads=threads, seconds=slot)
        samples[figure].append(tps)
        _step(f"pgbench -c {clients} -j {threads} -T {slot}: {tps:,.0f} tps")

    server.checkpoint()  # both sides start from the same clean state, not from the set-up's WAL
    for _ in range(rounds):
        bench_tps("pgbench_tps_c1", 1, 1)
        ledger("ledger_single_transfers_per_s_c1", "single", 1)
    for _ in range(rounds):
        bench_tps("pgbench_tps_c4", CLIENTS, 2)
        ledger("ledger_single_transfers_per_s_c4", "single", CLIENTS)
        ledger("ledger_batch_transfers_per_s_c4", "batch", CLIENTS, partitioned=True)
    ledger("ledger_hot_account_transfers_per_s_c4", "hot", CLIENTS)

    for figure, values in samples.items():
        figures[figure] = sum(values) / len(values)
    figures["ledger_single_vs_pgbench_c1"] = figures["ledger_single_transfers_per_s_c1"] / figures["pgbench_tps_c1"]
    figures["ledger_single_vs_pgbench_c4"] = figures["ledger_single_transfers_per_s_c4"] / figures["pgbench_tps_c4"]
    figures["ledger_batch_vs_pgbench_c4"] = figures["ledger_batch_transfers_per_s_c4"] / figures["pgbench_tps_c4"]
    for figure, splits in cpu.items():
        client = sum(c for c, _ in splits) / len(splits)
        backends = [b for _, b in splits if b is not None]
        backend = f", PostgreSQL backend {sum(backends) / len(backends):.0f} us" if backends else ""
        notes[figure] = f"CPU/transfer: client {client:.0f} us{backend}"
    notes["ledger_single_transfers_per_s_c4"] += f"; random pairs of {len(accounts):,} accounts"
    notes["ledger_batch_transfers_per_s_c4"] += f"; 1,000 per transaction, each client its own {share:,} accounts"
    notes["ledger_hot_account_transfers_per_s_c4"] += "; every transfer pays one account"
    if rounds > 1:
        notes["pgbench_tps_c1"] = notes["pgbench_tps_c4"] = f"mean of {rounds} runs taking turns with the ledger's"
    server.drop(scratch)


# --- verify_ledger against its floor -------------------------------------------------------


def _verify(server: Server, seconds: int, rebuild: bool, figures: dict, notes: dict) -> None:
    big = BIG_LEDGER
    if seconds < DEFAULT_SECONDS and not rebuild and (reason := cached(server, BIG_LEDGER)) is not None:
        big = SMALL_LEDGER
        print(
            f"verify: BENCH_SECONDS={seconds} and no reusable 1M-entry ledger ({reason}): timing the "
            f"{SMALL_LEDGER:,}-entry ledger instead, so the *_1m figures are not written (a full run builds "
            "and caches the 1M ledger)"
        )
    ledgers = {}
    for entries in sorted({SMALL_LEDGER, big}):
        dbname, how = ensure_ledger(server, entries, rebuild=rebuild)
        print(f"verify: ledger of {entries:,} entries in {dbname} ({how})")
        ledgers[entries] = dbname

    dbname = ledgers[big]
    floor(server, dbname)  # once to warm the caches, so every timing reads from memory
    before = floor(server, dbname)
    _step(
        f"floor, one COPY of every entry and posting row + SHA-256 ({before.megabytes:,.0f} MB): {before.seconds:.2f} s"
    )
    checked = _checked(server, dbname)
    after = floor(server, dbname)
    _step(f"floor again: {after.seconds:.2f} s")
    floor_seconds = (before.seconds + after.seconds) / 2
    figures["verify_vs_floor"] = checked.seconds / floor_seconds
    notes["verify_vs_floor"] = f"{big:,} entries; floor = mean of the runs before and after"
    if big == BIG_LEDGER:
        figures["verify_seconds_1m"] = checked.seconds
        figures["verify_floor_seconds_1m"] = floor_seconds
        figures["verify_peak_mb_1m"] = checked.peak_rss_mb
    small = checked if big == SMALL_LEDGER else _checked(server, ledgers[SMALL_LEDGER])
    figures["verify_peak_mb_100k"] = small.peak_rss_mb
    if checked.peak_is_verify_only:
        notes["verify_peak_mb_100k"] = notes["verify_peak_mb_1m"] = "peak RSS while verifying (high-water mark reset)"


def _checked(server: Server, dbname: str):
    checked = verify_in_child(server, dbname)
    backend = f", its PostgreSQL backend {checked.backend_cpu_seconds:.2f} s" if checked.backend_cpu_seconds else ""
    _step(
        f"verify_ledger on {checked.entries:,} entries ({checked.blocks} blocks): {checked.seconds:.2f} s "
        f"(CPU: Python {checked.cpu_seconds:.2f} s{backend}); RSS {checked.baseline_rss_mb or 0:.0f} MB at start, "
        f"peak {checked.peak_rss_mb:.0f} MB"
    )
    if not checked.ok:
        raise SystemExit(f"bench: verify_ledger failed on the benchmark ledger {dbname}: {checked.first_failure}")
    return checked


# --- settlement against one GROUP BY over the same payments ---------------------------------


def _settlement(server: Server, seconds: int, rebuild: bool, figures: dict, notes: dict) -> None:
    sizes = [SMALL_LEDGER, BIG_LEDGER]
    if seconds < DEFAULT_SECONDS and not rebuild and not _settle_template_ready(server, BIG_LEDGER):
        sizes = [SMALL_LEDGER]
        print(
            f"settlement: BENCH_SECONDS={seconds} and no reusable 1M-payment template: timing "
            f"{SMALL_LEDGER:,} payments only, so the *_1m figures are not written"
        )
    results = {}
    for payments in sizes:
        template, how = settlement_bench.ensure_template(server, payments, rebuild=rebuild)
        print(
            f"settlement: {payments:,} payments across {settlement_bench.MERCHANTS:,} merchants in {template} ({how})"
        )
        settled = settlement_bench.settle_in_child(server, template)
        if not settled.reconciled:
            raise SystemExit(f"bench: the settlement of {template} does not reconcile: {settled}")
        _step(
            f"settle_day: {settled.settle_seconds:.2f} s for {settled.payments:,} payments, {settled.paid:,} merchants "
            f"paid, {settled.queries} queries; GROUP BY merchant over the same rows: {settled.groupby_seconds:.3f} s; "
            f"RSS {settled.baseline_rss_mb or 0:.0f} MB at start, peak {settled.peak_rss_mb:.0f} MB"
        )
        results[payments] = settled
    small = results[SMALL_LEDGER]
    figures["settle_peak_mb_100k"] = small.peak_rss_mb
    ratio_from = results.get(BIG_LEDGER, small)
    figures["settle_vs_groupby"] = ratio_from.settle_seconds / ratio_from.groupby_seconds
    notes["settle_vs_groupby"] = (
        f"{ratio_from.payments:,} payments, {ratio_from.merchants:,} merchants; GROUP BY best of 2 warm runs"
    )
    if BIG_LEDGER in results:
        big = results[BIG_LEDGER]
        figures["settle_seconds_1m"] = big.settle_seconds
        figures["settle_groupby_seconds_1m"] = big.groupby_seconds
        figures["settle_peak_mb_1m"] = big.peak_rss_mb
        notes["settle_seconds_1m"] = f"{big.queries} queries, {big.entries:,} ledger entries"


def _settle_template_ready(server: Server, payments: int) -> bool:
    from bench.scratch import django_database

    dbname = settlement_bench.template_name(server, payments)
    if not server.exists(dbname):
        return False
    with django_database(dbname):
        return settlement_bench.why_not_reusable(payments) is None


# --- output --------------------------------------------------------------------------------


def _print_table(figures: dict, notes: dict) -> None:
    rows = [("figure", "value", "unit", "target", "note")]
    for name, (unit, target) in FIGURES.items():
        if name in figures:
            value = figures[name]
            shown = f"{value:,.2f}" if unit in ("ratio", "s", "ms") else f"{value:,.0f}"
            rows.append((name, shown, unit, target, notes.get(name, "")))
    width = [max(len(row[column]) for row in rows) for column in range(4)]
    print()
    for index, (name, value, unit, target, note) in enumerate(rows):
        line = f"{name:<{width[0]}}  {value:>{width[1]}}  {unit:<{width[2]}}  {target:<{width[3]}}  {note}"
        print(line.rstrip())
        if index == 0:
            print("  ".join("-" * w for w in width) + "  ----")
    print()


def _merge_results(figures: dict) -> None:
    try:
        results = json.loads(RESULTS.read_text())
        if not isinstance(results, dict):
            results = {}
    except (FileNotFoundError, ValueError):
        results = {}
    results.update({name: round(value, 3) for name, value in figures.items()})
    RESULTS.write_text(json.dumps(dict(sorted(results.items())), indent=2) + "\n")
