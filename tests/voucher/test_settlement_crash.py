"""A real Celery worker settling a day is killed (SIGKILL) halfway through the
batch, inside a chunk's open transaction; the task is run again on a new
worker. Every merchant ends up paid exactly once and the books reconcile."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db.models import Count, Sum

from config import celery_app
from tests.factories.voucher import merchant
from tests.support.worker import running_database_url, wait_for
from tests.voucher.settlement_support import sale, times_settled, yesterday
from tests.voucher.support import assert_ledger_ok, natural
from voucher import tasks
from voucher.models import Payment, SettlementBatch, SettlementLine
from voucher.selectors import batch_reconciliation

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

MERCHANTS = 24
STUCK_AT = 10  # the worker commits the merchants before this one, then is killed inside its chunk


def start_worker(queue: str, log_path: Path) -> subprocess.Popen:
    env = os.environ | {
        "DATABASE_URL": running_database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "DEBUG": "1",
        "DB_CONN_MAX_AGE": "0",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "VOUCHER_SETTLEMENT_CHUNK": "1",  # one merchant per transaction: progress is committed merchant by merchant
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "-Q",
                queue,
                "-n",
                f"{queue}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def queue(tmp_path):
    name = f"test-settle-{uuid.uuid4().hex[:12]}"
    workers: list[subprocess.Popen] = []
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False

    def start():
        worker = start_worker(name, tmp_path / "worker.log")
        workers.append(worker)
        return worker

    try:
        yield name, start, tmp_path / "worker.log"
    finally:
        celery_app.conf.task_always_eager = was_eager
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait(timeout=5)


def _committed_lines() -> int:
    return SettlementLine.objects.count()


def test_a_worker_killed_mid_batch_then_rerun_pays_every_merchant_exactly_once(queue):
    name, start, log_path = queue
    shops = [merchant() for _ in range(MERCHANTS)]
    for index, shop in enumerate(shops):
        for n in range(2):
            sale(shop, 10_000 + 100 * index + n, key=f"s{index}-{n}")
    stuck = sorted(shops, key=lambda s: s.pk)[STUCK_AT]
    # Hold one merchant's token account locked from outside, as a slow payment
    # would: the worker commits the merchants before it, then waits inside that
    # merchant's chunk, its transaction open and the merchant's row locked.
    blocker = psycopg.connect(running_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute("SELECT id FROM bank_account WHERE id = %s FOR UPDATE", [stuck.token_account_id])
    worker = start()
    try:
        result = tasks.settle_day_task.apply_async(kwargs={"day": yesterday().isoformat()}, queue=name)
        deadline = time.monotonic() + 60
        while _committed_lines() < STUCK_AT or not _waiting_on_lock(blocker):
            if worker.poll() is not None:
                pytest.fail(f"the worker exited early:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the worker did not reach the stuck merchant:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.05)
        # when the worker dies halfway
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    # then what it committed is visible and consistent, the rest is untouched
    # (its other settling thread may have gone on past the stuck merchant meanwhile)
    batch = SettlementBatch.objects.get()
    committed = batch.lines.count()
    assert batch.status == "running" and STUCK_AT <= committed < MERCHANTS
    assert not batch.lines.filter(merchant=stuck).exists()
    assert sum(times_settled(p) for p in Payment.objects.all()) == 2 * committed
    assert batch_reconciliation(batch)["balanced"]
    assert not result.ready()

    # when the task is run again, on a fresh worker
    worker = start()
    outcome = wait_for(
        tasks.settle_day_task.apply_async(kwargs={"day": yesterday().isoformat()}, queue=name),
        worker,
        log_path,
        timeout=120,
    )
    # then the batch is finished, every merchant paid exactly once
    batch.refresh_from_db()
    assert outcome["status"] == "done" and batch.status == "done"
    per_merchant = dict(batch.lines.values_list("merchant_id").annotate(n=Count("pk")))
    assert per_merchant == {shop.pk: 1 for shop in shops}
    assert [times_settled(p) for p in Payment.objects.all()] == [1] * 2 * MERCHANTS
    for shop in shops:
        expected = Payment.objects.filter(merchant=shop).aggregate(total=Sum("amount"))["total"]
        assert natural(shop.settlement_account) == expected and natural(shop.token_account) == 0
    report = batch_reconciliation(batch)
    assert report["balanced"] and report["net_plus_fees"] == sum(Payment.objects.values_list("amount", flat=True))
    assert (batch.paid_count, batch.payment_count) == (MERCHANTS, 2 * MERCHANTS)
    assert_ledger_ok()


def _waiting_on_lock(blocker: psycopg.Connection) -> bool:
    """Is some other backend waiting for a lock the blocker holds?"""
    with psycopg.connect(running_database_url().replace("postgres://", "postgresql://"), autocommit=True) as probe:
        blocked = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [blocker.info.backend_pid]
        ).fetchone()[0]
    return blocked > 0
