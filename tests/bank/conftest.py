"""Fixtures of the ledger tests: a snapshot of what the ledger holds, to prove a refusal wrote nothing."""

from contextlib import contextmanager

import pytest

from bank.models import Account, Hold, JournalEntry, Posting


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
