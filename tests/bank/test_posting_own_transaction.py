"""post_entries as the outermost transaction on PostgreSQL: its own atomic block
begins and commits it, and every refusal or database error rolls it back and
leaves Django's connection usable. Inside a caller's atomic block, as every
request that moves money calls it, it is part of the caller's transaction.

These tests commit for real (transaction=True): inside a test wrapped in a
transaction post_entries runs in the caller's transaction instead.
"""

import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from bank import errors, services
from bank.models import Account, JournalEntry, Posting
from bank.services import EntryRequest
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account
from tests.support.ledger import post_big_batch_with_replays

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance


def assert_connection_clean() -> None:
    """What atomic() leaves behind: autocommit, no atomic block, no transaction open."""
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    assert not connection.needs_rollback
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert connection.connection.pgconn.pipeline_status == psycopg.pq.PipelineStatus.OFF


def traced(action) -> tuple[object, list[tuple[str, str]]]:
    """Run action() under a libpq protocol trace: its result, and each message as
    (sender, message type), sender F for the client and B for the server."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "trace"
        with open(path, "w") as trace:
            pgconn.trace(trace.fileno())
            try:
                result = action()
            finally:
                pgconn.untrace()
        fields = [line.split("\t") for line in path.read_text().splitlines()]
    return result, [(f[1], f[3]) for f in fields if len(f) > 3]


def round_trips(messages: list[tuple[str, str]]) -> int:
    """Runs of messages the client sent, each answered by a run of the server's."""
    senders = [sender for sender, _ in messages]
    return sum(1 for pair in zip(senders, senders[1:], strict=False) if pair == ("F", "B"))


def test_transfer_commits_in_four_round_trips_and_leaves_the_connection_clean():
    # given: a first transfer has prepared the statements on this connection
    wallet = funded_account(10_000)
    shop = AccountFactory()
    services.post_entry(lines=[(wallet, -1), (shop, 1)], kind="payment", idempotency_key="own-1-first")
    # when
    entry, messages = traced(
        lambda: services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-1")
    )
    # then: BEGIN, the lock (with the key's lookup), the write, COMMIT
    assert round_trips(messages) == 4
    assert_connection_clean()
    assert JournalEntry.objects.get(idempotency_key="own-1").pk == entry.pk
    assert (balance(wallet), balance(shop)) == (8_999, 1_001)
    assert sorted(Posting.objects.filter(entry=entry).values_list("amount", flat=True)) == [-1_000, 1_000]
    assert verify_ledger().ok


def test_inside_a_callers_atomic_block_a_transfer_is_a_savepoint_of_its_transaction():
    # given: a first transfer has prepared the statements on this connection
    wallet = funded_account(10_000)
    shop = AccountFactory()
    services.post_entry(lines=[(wallet, -1), (shop, 1)], kind="payment", idempotency_key="own-9-first")

    # when: posted as the payment view posts, in its request's transaction
    def in_callers_transaction():
        with transaction.atomic():
            return services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-9")

    entry, messages = traced(in_callers_transaction)
    # then: BEGIN, SAVEPOINT, the lock, the write, RELEASE SAVEPOINT, COMMIT
    assert round_trips(messages) == 6
    assert_connection_clean()
    assert JournalEntry.objects.get(idempotency_key="own-9").pk == entry.pk
    assert (balance(wallet), balance(shop)) == (8_999, 1_001)


def test_retry_of_a_committed_key_returns_the_first_entry_and_writes_nothing():
    # given
    wallet = funded_account(10_000)
    shop = AccountFactory()
    first = services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-2")
    entries = JournalEntry.objects.count()
    # when
    again = services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-2")
    # then
    assert again.pk == first.pk and again.hash == first.hash
    assert JournalEntry.objects.count() == entries
    assert (balance(wallet), balance(shop)) == (9_000, 1_000)
    assert_connection_clean()


def test_other_payload_under_a_committed_key_is_refused_and_the_connection_stays_usable():
    # given
    wallet = funded_account(10_000)
    shop = AccountFactory()
    services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-3")
    # when
    with pytest.raises(errors.IdempotencyConflict):
        services.post_entry(lines=[(wallet, -2_000), (shop, 2_000)], kind="payment", idempotency_key="own-3")
    # then
    assert_connection_clean()
    assert (balance(wallet), balance(shop)) == (9_000, 1_000)


@pytest.mark.parametrize("refusal", ["insufficient_funds", "account_frozen", "account_not_found"])
def test_refusal_after_the_lock_rolls_back_writes_nothing_and_the_next_transfer_commits(refusal):
    # given
    wallet = funded_account(10_000)
    shop = AccountFactory()
    amount = 20_000 if refusal == "insufficient_funds" else 1_000
    payee = 10**12 if refusal == "account_not_found" else shop
    if refusal == "account_frozen":
        Account.objects.filter(pk=wallet.pk).update(status=Account.Status.FROZEN)
    entries = JournalEntry.objects.count()
    # when
    with pytest.raises(errors.BankError) as refused:
        services.post_entry(lines=[(wallet, -amount), (payee, amount)], kind="payment", idempotency_key="own-4")
    # then
    assert refused.value.code == refusal
    assert_connection_clean()
    assert JournalEntry.objects.count() == entries
    assert not JournalEntry.objects.filter(idempotency_key="own-4").exists()
    assert (balance(wallet), balance(shop)) == (10_000, 0)
    # and the connection goes on posting
    if refusal == "account_frozen":
        Account.objects.filter(pk=wallet.pk).update(status=Account.Status.ACTIVE)
    services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-4")
    assert (balance(wallet), balance(shop)) == (9_000, 1_000)
    assert_connection_clean()


def test_batch_with_one_refused_entry_writes_none_of_them():
    # given
    wallet = funded_account(5_000)
    shop = AccountFactory()
    requests = [
        EntryRequest(lines=[(wallet, -2_000), (shop, 2_000)], kind="payment", idempotency_key=f"own-5-{i}")
        for i in range(3)
    ]
    # when
    with pytest.raises(errors.InsufficientFunds):
        services.post_entries(requests=requests)
    # then
    assert_connection_clean()
    assert not JournalEntry.objects.filter(idempotency_key__startswith="own-5-").exists()
    assert balance(wallet) == 5_000
    assert len(services.post_entries(requests=requests[:2])) == 2
    assert balance(wallet) == 1_000


def test_big_batch_goes_by_copy_and_commits_with_replays_in_request_order():
    _, messages = traced(post_big_batch_with_replays)
    assert ("F", "CopyDone") in messages
    assert_connection_clean()


def test_big_batch_refused_after_the_lock_writes_nothing():
    # given
    wallet = funded_account(100)
    shop = AccountFactory()
    requests = [EntryRequest(lines=[(wallet, -1), (shop, 1)], kind="payment") for _ in range(101)]
    # when
    with pytest.raises(errors.InsufficientFunds):
        services.post_entries(requests=requests)
    # then
    assert_connection_clean()
    assert (balance(wallet), balance(shop)) == (100, 0)
    assert len(services.post_entries(requests=requests[:100])) == 100
    assert (balance(wallet), balance(shop)) == (0, 100)


def test_database_error_while_locking_rolls_back_and_leaves_the_connection_usable():
    # given: another transaction holds the payer's row lock, and we wait for it 50 ms at most
    wallet = funded_account(10_000)
    shop = AccountFactory()
    holder = psycopg.connect(**_params())
    try:
        holder.execute("SELECT 1 FROM bank_account WHERE id = %s FOR UPDATE", [wallet.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '50ms'")
        # when
        with pytest.raises(OperationalError, match="lock timeout"):
            services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-6")
        # then
        assert_connection_clean()
    finally:
        holder.rollback()
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert not JournalEntry.objects.filter(idempotency_key="own-6").exists()
    services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-6")
    assert (balance(wallet), balance(shop)) == (9_000, 1_000)
    assert_connection_clean()


def test_key_committed_by_another_transaction_after_our_lock_statement_began_returns_that_entry():
    # given: another transaction has written the same request under the same key and
    # holds the accounts' locks; our lock statement starts (its snapshot misses that
    # entry) and waits, then the other commits and our insert meets the unique key.
    wallet = funded_account(10_000)
    shop = AccountFactory()
    lines = [(wallet.pk, -1_000), (shop.pk, 1_000)]
    written, release = threading.Event(), threading.Event()
    theirs: list[JournalEntry] = []

    def other() -> None:
        try:
            with transaction.atomic():
                theirs.append(services.post_entry(lines=lines, kind="payment", idempotency_key="own-7"))
                written.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=other)
    thread.start()
    assert written.wait(timeout=10)
    waiter = threading.Thread(target=_release_once_waiting_on_a_lock, args=(release,))
    waiter.start()
    # when
    try:
        ours = services.post_entry(lines=lines, kind="payment", idempotency_key="own-7")
    finally:
        release.set()
        thread.join(timeout=10)
        waiter.join(timeout=10)
    # then
    assert ours.pk == theirs[0].pk
    assert JournalEntry.objects.filter(idempotency_key="own-7").count() == 1
    assert (balance(wallet), balance(shop)) == (9_000, 1_000)
    assert_connection_clean()
    assert verify_ledger().ok


def test_inside_a_callers_atomic_block_the_entry_is_part_of_the_callers_transaction():
    # given
    wallet = funded_account(10_000)
    shop = AccountFactory()

    # when
    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="own-8")
        raise Abandon
    # then
    assert not JournalEntry.objects.filter(idempotency_key="own-8").exists()
    assert (balance(wallet), balance(shop)) == (10_000, 0)
    assert_connection_clean()


def _params() -> dict:
    """Connection parameters for a plain psycopg connection of our own, beside Django's."""
    params = dict(connection.get_connection_params())
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return params


def _release_once_waiting_on_a_lock(release: threading.Event) -> None:
    """Set `release` once some backend waits on a row lock (our lock statement), or after 5 s."""
    with psycopg.connect(**_params()) as watcher:
        watcher.autocommit = True
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()
            if row[0]:
                break
            time.sleep(0.01)
    release.set()
