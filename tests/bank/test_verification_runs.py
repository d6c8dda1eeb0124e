"""Ledger verification started from the back office: a run is queued by a POST,
a Celery task (eager, or a real worker) runs verify_ledger with progress, and
the page shows passed, or failed naming the first entry that does not check out."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from bank import services, tasks
from bank.errors import BankError
from bank.models import AuditEvent, JournalEntry, VerificationRun
from bank.services import EntryRequest
from config import celery_app
from tests.factories import AccountFactory, funded_account
from tests.factories.voucher import UserFactory
from tests.support.ledger import ledger, raw_sql  # noqa: F401  (two sealed blocks and one unsealed entry)
from tests.support.worker import wait_for, worker_queue  # noqa: F401  (the real-worker fixture)


def auditor_with(*codenames: str, username: str = "officer"):
    """A staff login holding exactly these bank permissions."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="bank", codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # fresh: permissions are cached per object


@pytest.fixture
def operator(client, db):
    user = auditor_with("view_verificationrun", "start_verificationrun")
    client.force_login(user)
    return client, user


def route_to(queue, routes=None):
    """Send run_verification to `queue` (or restore `routes`). Celery caches its router
    on first use, so the cache is dropped as well."""
    celery_app.conf.task_routes = {"bank.tasks.run_verification": {"queue": queue}} if queue else routes
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)


def tamper_first_entry(ledger):  # noqa: F811
    entry = ledger["first"][0]
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_posting SET amount = amount + 1 WHERE entry_id = %s AND amount > 0", [entry.pk])
        cursor.execute("UPDATE bank_posting SET amount = amount - 1 WHERE entry_id = %s AND amount < 0", [entry.pk])
    return entry


def test_starting_a_run_from_the_admin_passes_on_a_clean_ledger(operator, ledger, django_capture_on_commit_callbacks):  # noqa: F811
    client, user = operator
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:bank_verificationrun_start"))
    # then
    run = VerificationRun.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:bank_verificationrun_change", args=[run.pk])
    assert run.status == "passed"
    entries = JournalEntry.objects.count()
    assert run.done == run.total == entries and run.blocks == 2
    page = client.get(response.url).content.decode()
    assert "passed" in page and f"The ledger checks out: {entries} entries, 2 blocks" in page
    assert 'http-equiv="refresh"' not in page
    assert AuditEvent.objects.filter(action="ledger.verify", actor=user, target_id=str(run.pk)).exists()


def test_a_tampered_ledger_fails_naming_the_changed_entry_first(operator, ledger, django_capture_on_commit_callbacks):  # noqa: F811
    client, _ = operator
    entry = tamper_first_entry(ledger)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:bank_verificationrun_start"))
    # then
    run = VerificationRun.objects.get()
    assert run.status == "failed"
    assert run.first_failure.startswith(f"entry #{entry.pk}: hash does not match")
    page = client.get(reverse("admin:bank_verificationrun_change", args=[run.pk])).content.decode()
    assert f"First failure: entry #{entry.pk}: hash does not match" in page


def test_a_queued_run_page_refreshes_itself_until_it_finishes(operator, ledger):  # noqa: F811
    client, user = operator
    run = services.start_verification_run(actor=user)  # not committed: no worker picks it up in this test
    page = client.get(reverse("admin:bank_verificationrun_change", args=[run.pk])).content.decode()
    assert 'http-equiv="refresh"' in page and "queued" in page


def test_a_second_start_while_one_is_queued_returns_the_same_run(operator, ledger):  # noqa: F811
    _, user = operator
    first = services.start_verification_run(actor=user)
    assert services.start_verification_run(actor=user).pk == first.pk
    assert VerificationRun.objects.count() == 1


def test_a_run_whose_worker_was_lost_is_closed_when_staff_start_a_new_one(operator, ledger, settings):  # noqa: F811
    _, user = operator
    lost = services.start_verification_run(actor=user)
    VerificationRun.objects.filter(pk=lost.pk).update(status=VerificationRun.Status.RUNNING)
    settings.VERIFICATION_RUN_TIMEOUT_MINUTES = 60
    assert services.start_verification_run(actor=user).pk == lost.pk  # still within its hour: the same run
    VerificationRun.objects.filter(pk=lost.pk).update(started_at=timezone.now() - timedelta(minutes=61))
    fresh = services.start_verification_run(actor=user)
    assert fresh.pk != lost.pk
    lost.refresh_from_db()
    assert lost.status == "failed" and lost.first_failure.startswith("abandoned")
    assert AuditEvent.objects.filter(action="ledger.verify.abandoned", target_id=str(lost.pk)).exists()
    assert tasks.run_verification.delay(lost.pk).get() == "failed"  # a late delivery of the lost run does nothing


def test_running_the_task_twice_verifies_once(operator, ledger):  # noqa: F811
    _, user = operator
    run = services.start_verification_run(actor=user)
    assert tasks.run_verification.delay(run.pk).get() == "passed"
    finished_at = VerificationRun.objects.get().finished_at
    assert tasks.run_verification.delay(run.pk).get() == "passed"
    assert VerificationRun.objects.get().finished_at == finished_at


def test_staff_without_the_start_permission_cannot_start_a_run_even_by_a_crafted_post(client, ledger):  # noqa: F811
    viewer = auditor_with("view_verificationrun", username="auditor")
    client.force_login(viewer)
    listing = client.get(reverse("admin:bank_verificationrun_changelist")).content.decode()
    assert "Start verification" not in listing and "may watch runs but not start" in listing
    assert client.post(reverse("admin:bank_verificationrun_start")).status_code == 403
    with pytest.raises(BankError) as refused:
        services.start_verification_run(actor=viewer)
    assert refused.value.code == "role_required"
    assert not VerificationRun.objects.exists()


def test_the_start_page_refuses_get(operator, ledger):  # noqa: F811
    client, _ = operator
    assert client.get(reverse("admin:bank_verificationrun_start")).status_code == 405
    assert not VerificationRun.objects.exists()


def test_the_run_list_shows_the_latest_block_and_its_validators(operator, ledger, validators):  # noqa: F811
    client, _ = operator
    page = client.get(reverse("admin:bank_verificationrun_changelist")).content.decode()
    assert "Latest attested block" in page
    assert "<th>Height</th><td>1</td>" in page
    for validator in validators[:3]:
        assert validator.name in page


def test_a_finished_run_shows_every_entry_checked(operator, ledger):  # noqa: F811
    # verify_ledger reports progress every 10,000 entries and at the end; the row keeps the last report.
    client, user = operator
    run = services.run_verification(run=services.start_verification_run(actor=user))
    entries = JournalEntry.objects.count()
    assert (run.done, run.total, run.percent) == (entries, entries, 100)
    page = client.get(reverse("admin:bank_verificationrun_changelist")).content.decode()
    assert f"{entries} / {entries} entries (100%)" in page


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_runs_a_started_verification_and_finds_the_tampered_entry(worker_queue, ledger):  # noqa: F811
    queue, worker, log_path = worker_queue
    user = auditor_with("view_verificationrun", "start_verificationrun")
    entry = tamper_first_entry(ledger)
    # the task goes where this test's worker listens, as production routes it to the workers' queue
    routes = celery_app.conf.task_routes
    route_to(queue)
    try:
        # when: started as the admin page starts it; the task is sent after the commit
        run = services.start_verification_run(actor=user)
        deadline = time.monotonic() + 60
        while not VerificationRun.objects.get(pk=run.pk).is_finished:
            assert worker.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.1)
    finally:
        route_to(None, routes)
    # then
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.first_failure.startswith(f"entry #{entry.pk}:")
    assert run.done == run.total == JournalEntry.objects.count() and run.finished_at is not None
    # and a second delivery of the same task changes nothing
    assert wait_for(tasks.run_verification.apply_async(args=[run.pk], queue=queue), worker, log_path) == "failed"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_is_written_while_the_ledger_streams_without_disturbing_it(validators):
    # verify_ledger reports progress every 10,000 entries, in the middle of its COPY stream, where the
    # run row is written on a second connection; 12,000 entries make it do so once mid-stream.
    payer, payee = funded_account(10_000_000), AccountFactory()
    for _ in range(12):
        services.post_entries(
            requests=[EntryRequest(lines=[(payer, -1), (payee, 1)], kind="transfer") for _ in range(1_000)]
        )
    services.seal_pending_entries()
    user = auditor_with("view_verificationrun", "start_verificationrun")
    run = services.start_verification_run(actor=user)
    finished = services.run_verification(run=run)
    assert finished.status == "passed"
    assert finished.done == finished.total == JournalEntry.objects.count() > 12_000
