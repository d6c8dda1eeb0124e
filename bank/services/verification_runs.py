"""Ledger verification runs started from the back office: queue one, and run it
(from a Celery task) while writing its progress where staff can watch it."""

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from bank.models import VerificationRun
from bank.services.audit import record_audit
from bank.services.controls import require_role
from bank.verification import verify_ledger

START_PERMISSION = "bank.start_verificationrun"
PROGRESS_EVERY_SECONDS = 2.0


def start_verification_run(*, actor) -> VerificationRun:
    """Queue a run and hand it to a worker once the row is committed. A run
    already queued or running is returned instead of starting a second one."""
    require_role(actor, START_PERMISSION)
    from bank.tasks import run_verification  # the task module imports this one

    with transaction.atomic():
        busy = VerificationRun.objects.select_for_update().filter(
            status__in=[VerificationRun.Status.QUEUED, VerificationRun.Status.RUNNING]
        )
        current = busy.order_by("pk").first()
        if current is not None and not _abandoned(current):
            return current
        if current is not None:
            # Its worker died (no verdict long after any ledger verifies): close it, so staff
            # are not locked out of verifying, and say so on the run.
            minutes = settings.VERIFICATION_RUN_TIMEOUT_MINUTES
            busy.filter(pk=current.pk).update(
                status=VerificationRun.Status.FAILED,
                finished_at=timezone.now(),
                first_failure=f"abandoned: no verdict {minutes} minutes after it started (its worker was lost)",
            )
            record_audit(actor=actor, action="ledger.verify.abandoned", target=current, after={"status": "failed"})
        run = VerificationRun.objects.create(started_by=actor)
        record_audit(actor=actor, action="ledger.verify", target=run, after={"status": run.status})
        transaction.on_commit(lambda: run_verification.delay(run.pk))
    return run


def _abandoned(run: VerificationRun) -> bool:
    return run.started_at < timezone.now() - timedelta(minutes=settings.VERIFICATION_RUN_TIMEOUT_MINUTES)


def run_verification(*, run: VerificationRun | int) -> VerificationRun:
    """Run a queued verification to its verdict. Safe to deliver twice or to two
    workers at once: only the caller that moves the row from queued to running
    verifies; the others return the row as it is."""
    run_id = getattr(run, "pk", run)
    claimed = VerificationRun.objects.filter(pk=run_id, status=VerificationRun.Status.QUEUED).update(
        status=VerificationRun.Status.RUNNING
    )
    if not claimed:
        return VerificationRun.objects.get(pk=run_id)
    progress = _ProgressWriter(run_id)
    try:
        report = verify_ledger(progress=progress)
    finally:
        progress.close()
    failures = [str(failure) for failure in report.failures]
    VerificationRun.objects.filter(pk=run_id).update(
        status=VerificationRun.Status.PASSED if report.ok else VerificationRun.Status.FAILED,
        finished_at=timezone.now(),
        done=report.entries,
        total=report.entries,
        blocks=report.blocks,
        accounts=report.accounts,
        failure_count=len(failures),
        first_failure=failures[0] if failures else "",
        failures=failures,
    )
    return VerificationRun.objects.get(pk=run_id)


class _ProgressWriter:
    """verify_ledger's progress hook: writes done/total at most every 2 s or 1%.

    On PostgreSQL the main connection is busy streaming the ledger (COPY), so the
    row is updated on a second connection, opened on first use; each update
    commits at once so the admin page sees it while the run goes on."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.last_time = 0.0
        self.last_done = 0
        self._connection = None

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last_time < PROGRESS_EVERY_SECONDS and done - self.last_done < max(1, total // 100):
            return
        self.last_time, self.last_done = now, done
        sql = "UPDATE bank_verificationrun SET done = %s, total = %s WHERE id = %s"
        if connection.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(sql, [done, total, self.run_id])
            return
        if self._connection is None:
            self._connection = connections.create_connection(connection.alias)
            self._connection.set_autocommit(True)
        with self._connection.cursor() as cursor:
            cursor.execute(sql, [done, total, self.run_id])

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
