"""A real Celery worker, as a separate process on Redis and the test database, seals a block."""

import pytest

from bank import services, tasks
from bank.models import Block, JournalEntry
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account
from tests.support.worker import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_real_celery_worker_seals_the_committed_entries_into_a_block(worker_queue):
    # given
    queue, worker, log_path = worker_queue
    payer, payee = funded_account(10_000), AccountFactory()
    posted = [services.post_entry(lines=[(payer, -n), (payee, n)], kind="transfer") for n in (100, 200, 300)]
    assert not Block.objects.exists()
    # when
    heights = wait_for(tasks.seal_blocks.apply_async(queue=queue), worker, log_path)
    # then
    assert heights == [0]
    block = Block.objects.get(height=0)
    sealed = set(JournalEntry.objects.filter(block=block).values_list("pk", flat=True))
    assert {entry.pk for entry in posted} <= sealed
    assert block.entry_count == JournalEntry.objects.count() == len(sealed)
    assert verify_ledger().ok
    # and when: run again, the task finds nothing to seal (safe to deliver twice)
    assert wait_for(tasks.seal_blocks.apply_async(queue=queue), worker, log_path) == []
