"""Ledgers the bank's tests share: two sealed blocks, a big batch by COPY, and a cursor that may tamper."""

from contextlib import contextmanager

import pytest
from django.db import connection

from bank import services
from bank.models import Account, JournalEntry, Posting
from bank.services import EntryRequest
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account


@pytest.fixture
def ledger(validators) -> dict:
    """Two sealed blocks and one entry not sealed yet, between two customers."""
    payer, payee = funded_account(100_000), AccountFactory()

    def transfer(amount):
        return services.post_entry(lines=[(payer, -amount), (payee, amount)], kind="transfer")

    first = [transfer(100), transfer(200)]
    services.seal_pending_entries()
    second = [transfer(300), transfer(400)]
    services.seal_pending_entries()
    unsealed = transfer(500)
    return {"payer": payer, "payee": payee, "first": first, "second": second, "unsealed": unsealed}


@contextmanager
def raw_sql():
    """A cursor that may edit the ledger's tables. PostgreSQL's append-only triggers are
    switched off for this session while it is open (the test user is a superuser)."""
    on_postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if on_postgres:
            # The test's entries are not committed (the test runs in a transaction), so their
            # deferred sum-to-zero checks are still queued and would judge the tampered rows.
            # Run them now, on the rows as posted, as the commit would have.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            if on_postgres:
                cursor.execute("SET session_replication_role = DEFAULT")


def post_big_batch_with_replays() -> None:
    """A batch big enough for PostgreSQL's COPY path (bank.services.posting.writers._COPY_FROM_POSTINGS):
    100 transfers, one replay of a key posted before the batch, one key repeated in it.
    Asserts what it wrote; shared with the outermost-transaction tests."""
    payer = funded_account(1_000_000)
    payees = [AccountFactory() for _ in range(5)]
    earlier = services.post_entry(lines=[(payer, -7), (payees[0], 7)], kind="transfer", idempotency_key="big-0")
    entries_before, postings_before = JournalEntry.objects.count(), Posting.objects.count()
    requests = [
        EntryRequest(
            lines=[(payer, -(i + 1)), (payees[i % 5], i + 1)],
            kind="transfer",
            memo=f'batch "{i}" 한글\n',
            reference="big" if i % 2 else "",
            idempotency_key=f"big-{i + 1}" if i % 3 else None,
        )
        for i in range(100)
    ]
    requests.insert(10, EntryRequest(lines=[(payer, -7), (payees[0], 7)], kind="transfer", idempotency_key="big-0"))
    requests.append(requests[20])  # its key again, in the same batch

    entries = services.post_entries(requests=requests)

    assert len(entries) == 102
    assert entries[10].pk == earlier.pk
    assert entries[-1].pk == entries[20].pk
    fresh = entries[:10] + entries[11:-1]
    assert [e.pk for e in fresh] == sorted(e.pk for e in fresh)
    assert JournalEntry.objects.count() == entries_before + 100
    assert Posting.objects.count() == postings_before + 200
    for entry, request in zip(fresh, requests[:10] + requests[11:-1], strict=True):
        stored = JournalEntry.objects.get(pk=entry.pk)
        assert (stored.uid, stored.hash, stored.created_at, stored.memo) == (
            entry.uid,
            entry.hash,
            entry.created_at,
            request.memo,
        )
        assert list(stored.postings.order_by("pk").values_list("account_id", "amount")) == [
            (account.pk, amount) for account, amount in request.lines
        ]
    assert _balance(payer) == 1_000_000 - 7 - sum(range(1, 101))
    assert sum(_balance(p) for p in payees) == 7 + sum(range(1, 101))
    assert verify_ledger().ok


def _balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance
