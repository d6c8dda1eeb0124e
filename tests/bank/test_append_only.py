"""Entries and postings are never changed or deleted: the model layer refuses it everywhere,
and on PostgreSQL triggers refuse raw SQL too and check the sum-to-zero rule at commit."""

import pytest
from django.db import IntegrityError, connection, transaction

from bank import services
from bank.models import Block, BlockAttestation, ImmutableRowError, JournalEntry, Posting
from tests.factories import AccountFactory, funded_account


@pytest.fixture
def entry(db) -> JournalEntry:
    payer = funded_account(10_000)
    return services.post_entry(lines=[(payer, -1_000), (AccountFactory(), 1_000)], kind="transfer")


def posting_rows() -> list[tuple]:
    return list(Posting.objects.order_by("pk").values_list("pk", "entry_id", "account_id", "currency", "amount"))


def entry_rows() -> list[tuple]:
    return list(JournalEntry.objects.order_by("pk").values_list("pk", "kind", "memo", "hash"))


# --- the model layer (every database) -------------------------------------------------------


def test_saving_a_changed_posting_is_refused(entry):
    # given
    before = posting_rows()
    posting = entry.postings.first()
    posting.amount += 1
    # when / then
    with pytest.raises(ImmutableRowError):
        posting.save()
    assert posting_rows() == before


def test_deleting_a_posting_is_refused(entry):
    # given
    before = posting_rows()
    # when / then
    with pytest.raises(ImmutableRowError):
        entry.postings.first().delete()
    assert posting_rows() == before


def test_saving_a_changed_entry_is_refused(entry):
    # given
    before = entry_rows()
    entry.memo = "rewritten history"
    # when / then
    with pytest.raises(ImmutableRowError):
        entry.save()
    with pytest.raises(ImmutableRowError):
        entry.save(update_fields=["memo"])
    assert entry_rows() == before


def test_deleting_an_entry_is_refused(entry):
    # given
    before = entry_rows()
    # when / then
    with pytest.raises(ImmutableRowError):
        entry.delete()
    assert entry_rows() == before


def test_saving_a_block_attestation_again_is_refused(validators, entry):
    # given
    [block] = services.seal_pending_entries()
    attestation = BlockAttestation.objects.filter(block=block).first()
    # when / then
    with pytest.raises(ImmutableRowError):
        attestation.save()
    with pytest.raises(ImmutableRowError):
        attestation.delete()


# --- PostgreSQL triggers --------------------------------------------------------------------


def refused_by_database(sql: str, params=()) -> None:
    """Run one statement in a savepoint and expect PostgreSQL to refuse it."""
    with pytest.raises(IntegrityError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE bank_posting SET amount = amount + 1 WHERE entry_id = %s",
        "UPDATE bank_posting SET account_id = account_id WHERE entry_id = %s",
        "DELETE FROM bank_posting WHERE entry_id = %s",
        "UPDATE bank_journalentry SET memo = 'rewritten' WHERE id = %s",
        "DELETE FROM bank_journalentry WHERE id = %s",
    ],
    ids=["posting-amount", "posting-noop-update", "posting-delete", "entry-memo", "entry-delete"],
)
def test_raw_sql_update_or_delete_of_ledger_rows_is_refused_on_postgresql(entry, sql):
    # given
    postings, entries = posting_rows(), entry_rows()
    # when / then
    refused_by_database(sql, [entry.pk])
    assert (posting_rows(), entry_rows()) == (postings, entries)


@pytest.mark.postgres
def test_queryset_update_and_delete_bypassing_the_model_are_refused_on_postgresql(entry):
    # given
    before = posting_rows()
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        Posting.objects.filter(entry=entry).update(amount=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Posting.objects.filter(entry=entry).delete()
    assert posting_rows() == before


@pytest.mark.postgres
def test_raw_sql_cannot_change_a_sealed_block_or_unseal_an_entry_on_postgresql(validators, entry):
    # given
    [block] = services.seal_pending_entries()
    # when / then
    refused_by_database("UPDATE bank_block SET merkle_root = %s WHERE id = %s", ["00" * 32, block.pk])
    refused_by_database("UPDATE bank_blockattestation SET signature = '' WHERE block_id = %s", [block.pk])
    refused_by_database("UPDATE bank_journalentry SET block_id = NULL WHERE id = %s", [entry.pk])
    assert Block.objects.get(pk=block.pk).merkle_root == block.merkle_root
    assert JournalEntry.objects.get(pk=entry.pk).block_id == block.pk


def insert_entry_with_raw_sql(cursor, postings: list[tuple[int, str, int]]) -> int:
    cursor.execute(
        "INSERT INTO bank_journalentry (uid, kind, memo, reference, request_hash, created_at, hash) "
        "VALUES (gen_random_uuid(), 'raw', '', '', '', now(), repeat('0', 64)) RETURNING id"
    )
    [entry_id] = cursor.fetchone()
    for account_id, currency, amount in postings:
        cursor.execute(
            "INSERT INTO bank_posting (entry_id, account_id, currency, amount) VALUES (%s, %s, %s, %s)",
            [entry_id, account_id, currency, amount],
        )
    return entry_id


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "shape",
    ["not-zero", "one-line", "no-lines", "wrong-currency", "two-currencies-one-off", "two-currencies-wrong-account"],
    ids=lambda shape: shape,
)
def test_unbalanced_entry_inserted_with_raw_sql_is_refused_at_commit(shape):
    # given
    a, b = AccountFactory(), AccountFactory()
    c, d = AccountFactory(currency="BKRW"), AccountFactory(currency="BKRW")
    postings = {
        "not-zero": [(a.pk, "KRW", -100), (b.pk, "KRW", 99)],
        "one-line": [(a.pk, "KRW", 100)],
        "no-lines": [],
        "wrong-currency": [(a.pk, "KRW", -100), (b.pk, "BKRW", 100)],
        # each currency on its own must sum to zero, not the whole entry
        "two-currencies-one-off": [(a.pk, "KRW", -100), (b.pk, "KRW", 100), (c.pk, "BKRW", -5), (d.pk, "BKRW", 4)],
        "two-currencies-wrong-account": [(a.pk, "KRW", -5), (b.pk, "KRW", 5), (c.pk, "KRW", -7), (d.pk, "BKRW", 7)],
    }[shape]
    before = (JournalEntry.objects.count(), Posting.objects.count())
    # when: the statements themselves succeed; the deferred trigger fires at commit
    with pytest.raises(IntegrityError):
        with transaction.atomic(), connection.cursor() as cursor:
            insert_entry_with_raw_sql(cursor, postings)
    # then
    assert (JournalEntry.objects.count(), Posting.objects.count()) == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_balanced_entry_inserted_with_raw_sql_commits(db):
    # given: the control case, so the test above shows the rule and not a broken insert
    a, b = AccountFactory(), AccountFactory()
    # when
    with transaction.atomic(), connection.cursor() as cursor:
        entry_id = insert_entry_with_raw_sql(cursor, [(a.pk, "KRW", -100), (b.pk, "KRW", 100)])
    # then
    assert sorted(Posting.objects.filter(entry_id=entry_id).values_list("amount", flat=True)) == [-100, 100]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_posting_appended_to_an_existing_entry_is_refused_and_the_entry_stays_as_it_was():
    # given an entry committed earlier
    a, b = AccountFactory(), AccountFactory()
    with transaction.atomic(), connection.cursor() as cursor:
        entry_id = insert_entry_with_raw_sql(cursor, [(a.pk, "KRW", -100), (b.pk, "KRW", 100)])
    # when another transaction adds a posting to it
    with pytest.raises(IntegrityError):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bank_posting (entry_id, account_id, currency, amount) VALUES (%s, %s, 'KRW', 5)",
                [entry_id, b.pk],
            )
    # then
    assert sorted(Posting.objects.filter(entry_id=entry_id).values_list("amount", flat=True)) == [-100, 100]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_entry_in_two_currencies_each_summing_to_zero_inserted_with_raw_sql_commits(db):
    # given
    a, b = AccountFactory(), AccountFactory()
    c, d = AccountFactory(currency="BKRW"), AccountFactory(currency="BKRW")
    # when
    with transaction.atomic(), connection.cursor() as cursor:
        entry_id = insert_entry_with_raw_sql(
            cursor, [(a.pk, "KRW", -100), (b.pk, "KRW", 100), (c.pk, "BKRW", -5), (d.pk, "BKRW", 5)]
        )
    # then
    assert Posting.objects.filter(entry_id=entry_id).count() == 4
