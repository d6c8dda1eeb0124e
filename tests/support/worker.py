"""A real Celery worker for the tests that need one, on Redis and the test database."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings

from config import celery_app


def running_database_url() -> str:
    """The URL of the database this test runs on (pytest-django's test_... database)."""
    db = django_settings.DATABASES["default"]
    credentials = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def worker_queue(validators, validator_key_material, tmp_path):
    """Start `celery worker` on a queue of its own; yield the queue name; stop the worker."""
    key_dir, _ = validator_key_material
    queue = f"test-bank-{uuid.uuid4().hex[:12]}"
    env = os.environ | {
        "DATABASE_URL": running_database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "DEBUG": "1",
        "DB_CONN_MAX_AGE": "0",
        "LEDGER_VALIDATOR_KEY_DIR": str(key_dir),
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    celery = Path(sys.executable).parent / "celery"
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [
                str(celery),
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
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
    was_eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield queue, worker, log_path
    finally:
        celery_app.conf.task_always_eager = was_eager
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)


def wait_for(result, worker, log_path: Path, timeout: float = 60):
    """The task's return value, failing early (with the worker's log) if the worker died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.ready():
            return result.get(timeout=5)
        if worker.poll() is not None:
            pytest.fail(f"the Celery worker exited with {worker.returncode}:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"the Celery worker did not finish the task in {timeout} s:\n{log_path.read_text()[-4000:]}")
