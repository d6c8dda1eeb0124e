"""A posting names an entry and an account that exist, and an account is never
deleted: checked per INSERT statement by a trigger (migration 0012) instead of
per row by foreign keys (the references on PostgreSQL and SQLite, deletion on PostgreSQL)."""

import pytest
from django.db import IntegrityError, connection, transaction

from bank import services
from bank.models import Account, JournalEntry, Posting
from tests.factories import AccountFactory, funded_account


@pytest.fixture
def entry(db) -> JournalEntry:
    payer = funded_account(10_000)
    return services.post_entry(lines=[(payer, -1_000), (AccountFactory(), 1_000)], kind="transfer")


def _insert_postings(rows: list[tuple[int, int, int]]) -> None:
    """Raw INSERT of (entry, account, amount) rows in KRW, in one statement, as a writer bypassing the service would."""
    values = ", ".join(["(%s, %s, 'KRW', %s)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO bank_posting (entry_id, account_id, currency, amount) VALUES {values}",
            [value for row in rows for value in row],
        )


@pytest.mark.parametrize("missing", ["account", "entry"])
def test_a_posting_naming_a_missing_account_or_entry_is_refused_and_nothing_is_written(entry, missing):
    # given a statement whose second posting names an id that does not exist
    account = entry.postings.first().account_id
    absent = (Account if missing == "account" else JournalEntry).objects.order_by("-pk").first().pk + 1000
    bad = (entry.pk, absent, 5) if missing == "account" else (absent, account, 5)
    before = Posting.objects.count()
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        _insert_postings([(entry.pk, account, -5), bad])
    assert Posting.objects.count() == before


@pytest.mark.postgres  # SQLite has the reference checks but not the deletion guard (bank 0012)
def test_an_account_cannot_be_deleted_even_without_postings(db):
    # given an account nothing was ever posted to, and one with history
    unused = AccountFactory()
    used = funded_account(1_000)
    # when / then: a bank closes accounts, it does not remove them
    for account in (unused, used):
        with pytest.raises(IntegrityError), transaction.atomic():
            Account.objects.filter(pk=account.pk)._raw_delete(connection.alias)
    assert Account.objects.filter(pk__in=[unused.pk, used.pk]).count() == 2
