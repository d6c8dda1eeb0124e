"""Fixtures of the ledger tests: a snapshot of what the ledger holds, to prove a refusal wrote nothing;
a ledger of two sealed blocks and a real Celery worker (from tests/support)."""

from contextlib import contextmanager

import pytest

from bank.models import Account, Hold, JournalEntry, Posting
from tests.support.ledger import ledger  # noqa: F401  (two sealed blocks and one unsealed entry)
from tests.support.worker import worker_queue  # noqa: F401  (a real Celery worker)


def ledger_state() -> dict:
    """Everything a refused request must leave as it was: row counts, balances and holds."""
    return {
        "entries": JournalEntry.objects.count(),
        "postings": Posting.objects.count(),
        "holds": list(Hold.objects.order_by("pk").values_list("pk", "status", "captured_amount")),
        "accounts": list(Account.objects.order_by("pk").values_list("pk", "balance", "on_hold", "status")),
    }


@pytest.fixture
def ledger_unchanged(db):
    """`with ledger_unchanged(): ...` fails if the block changed the ledger."""

    @contextmanager
    def check():
        before = ledger_state()
        yield
        assert ledger_state() == before

    return check
