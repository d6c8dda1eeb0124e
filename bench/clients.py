"""Client processes that post to the ledger through the posting service.

Each client is its own process (spawned, so each runs django.setup() and opens
its own connection), as separate application servers would. They start
together on a barrier; each then posts for the given time and reports how
many transfers it completed, its own CPU time and, when the server is local,
the CPU time of its PostgreSQL backend, which gives the time split.

Every transfer (or batch) is posted inside `transaction.atomic()`, as the
application posts: a payment, transfer, top-up or refund calls post_entry in
its request's transaction (so the ledger runs in a savepoint of it), and
expiry and seizures call post_entries in theirs.
"""

import multiprocessing
import os
import queue
import random
import time
from dataclasses import dataclass

BATCH_SIZE = 1000


@dataclass(frozen=True)
class Job:
    kind: str  # "single", "hot" or "batch"
    accounts: tuple[int, ...]  # the accounts this client moves money between
    hot_account: int | None = None
    seconds: float = 0.0  # post for this long...
    transfers: int = 0  # ...or until this many transfers are posted (with seconds == 0)


@dataclass(frozen=True)
class ClientResult:
    transfers: int
    seconds: float
    client_cpu: float
    backend_cpu: float | None


@dataclass(frozen=True)
class RunResult:
    clients: list[ClientResult]

    @property
    def transfers_per_second(self) -> float:
        return sum(c.transfers / c.seconds for c in self.clients if c.seconds)

    @property
    def transfers(self) -> int:
        return sum(c.transfers for c in self.clients)

    def cpu_us_per_transfer(self) -> tuple[float, float | None]:
        """(client CPU, PostgreSQL backend CPU) per transfer, in microseconds."""
        n = self.transfers or 1
        client = sum(c.client_cpu for c in self.clients) / n * 1e6
        backends = [c.backend_cpu for c in self.clients]
        backend = None if None in backends else sum(backends) / n * 1e6
        return client, backend


def run_clients(db_url: str, jobs: list[Job], progress=None) -> RunResult:
    """Run one client process per job, all started together; `progress`, if given,
    is called with the running total of transfers (batch jobs report per batch)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(jobs))
    done = context.Value("q", 0)
    results = context.Queue()
    processes = [
        context.Process(target=_client_main, args=(db_url, job, index, barrier, done, results), daemon=True)
        for index, job in enumerate(jobs)
    ]
    for process in processes:
        process.start()
    collected = []
    try:
        while len(collected) < len(processes):
            try:
                collected.append(results.get(timeout=0.5))
            except queue.Empty:  # meanwhile: show progress, and notice a client that died
                if progress:
                    progress(done.value)
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise RuntimeError("a benchmark client process failed (its traceback is above)") from None
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    if progress:
        progress(done.value)
    failures = [r for r in collected if isinstance(r, str)]
    if failures:
        raise RuntimeError("a benchmark client failed:\n" + failures[0])
    return RunResult(clients=collected)


def _client_main(db_url, job: Job, index: int, barrier, done, results) -> None:
    try:
        results.put(_client(db_url, job, index, barrier, done))
    except BaseException:  # report it to the parent instead of dying silently
        import traceback

        barrier.abort()
        results.put(traceback.format_exc())


def _client(db_url, job: Job, index: int, barrier, done) -> ClientResult:
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction

    from bank.services import EntryRequest, post_entries, post_entry

    # DEBUG=1 is only there for the development secret key: a server in
    # production does not keep a log of every query, so neither do the clients.
    settings.DEBUG = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [backend_pid] = cursor.fetchone()
    rng = random.Random(index * 7919 + os.getpid())
    accounts = job.accounts
    run = f"{os.getpid()}-{time.time_ns()}"
    barrier.wait()

    backend_cpu_before = process_cpu(backend_pid)
    cpu_before = time.process_time()
    start = time.perf_counter()
    deadline = start + job.seconds
    posted = 0
    payers = [a for a in accounts if a != job.hot_account] if job.kind == "hot" else accounts
    while time.perf_counter() < deadline if job.seconds else posted < job.transfers:
        if job.kind == "batch":
            size = BATCH_SIZE if job.seconds else min(BATCH_SIZE, job.transfers - posted)
            requests = []
            for i in range(posted, posted + size):
                payer, payee = rng.sample(accounts, 2)
                amount = rng.randint(1, 10_000)
                requests.append(
                    EntryRequest(
                        lines=[(payer, -amount), (payee, amount)],
                        kind="transfer",
                        reference=f"batch-{index}",
                        idempotency_key=f"bench:{run}:{i}",
                    )
                )
            with transaction.atomic():
                post_entries(requests=requests)
            posted += size
            with done.get_lock():
                done.value += size
        else:
            if job.kind == "hot":
                payer, payee = rng.choice(payers), job.hot_account
            else:
                payer, payee = rng.sample(accounts, 2)
            amount = rng.randint(1, 10_000)
            with transaction.atomic():
                post_entry(
                    lines=[(payer, -amount), (payee, amount)],
                    kind="transfer",
                    reference="single",
                    idempotency_key=f"bench:{run}:{posted}",
                )
            posted += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_before
    backend_cpu_after = process_cpu(backend_pid)
    backend_cpu = None
    if backend_cpu_before is not None and backend_cpu_after is not None:
        backend_cpu = backend_cpu_after - backend_cpu_before
    connection.close()
    return ClientResult(transfers=posted, seconds=elapsed, client_cpu=cpu, backend_cpu=backend_cpu)


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a local process (its PostgreSQL backend), or None."""
    try:
        with open(f"/proc/{pid}/comm") as comm:  # a remote server's pid means nothing here
            if comm.read().strip() != "postgres":
                return None
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
