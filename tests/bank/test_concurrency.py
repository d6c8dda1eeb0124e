"""Real races on PostgreSQL: threads with their own connections, released together by a barrier.

Each test commits for real (transaction=True), so row locks, the deferred sum-to-zero
trigger and READ COMMITTED visibility behave as they do in production.
"""

import random
import time
from collections import Counter

import pytest
from django.db.models import Sum

from bank import services
from bank.errors import BankError
from bank.models import Account, Block, JournalEntry
from bank.services import EntryRequest
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account
from tests.support.threads import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def balance(account: Account) -> int:
    return Account.objects.get(pk=account.pk).balance


def test_twenty_spenders_racing_for_one_balance_that_covers_seven_exactly_seven_succeed(db):
    # given
    wallet = funded_account(7_000)
    shop = AccountFactory()
    # when
    outcomes = race(
        20, lambda i: services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", reference=str(i))
    )
    # then
    errors = [error for status, error in outcomes if status == "error"]
    assert not [e for e in errors if not isinstance(e, BankError)], errors
    assert Counter(e.code for e in errors) == Counter({"insufficient_funds": 13})
    assert sum(status == "ok" for status, _ in outcomes) == 7
    assert (balance(wallet), balance(shop)) == (0, 7_000)
    assert JournalEntry.objects.filter(kind="payment").count() == 7
    assert verify_ledger().ok


def test_transfers_in_every_direction_for_seconds_never_deadlock_and_preserve_the_total(db):
    # given
    accounts = [funded_account(1_000_000) for _ in range(3)]
    a, b, c = accounts
    total_before = sum(balance(x) for x in accounts)
    deadline = time.monotonic() + 3

    def transfer(rng, source, target):
        amount = rng.randint(1, 100)
        services.post_entry(lines=[(source, -amount), (target, amount)], kind="transfer")

    moves = [
        lambda rng: transfer(rng, a, b),
        lambda rng: transfer(rng, b, a),
        lambda rng: transfer(rng, c, a),
        lambda rng: transfer(rng, b, c),
        # three accounts in one entry, lines given in descending id order
        lambda rng: services.post_entry(lines=[(c, -20), (b, 10), (a, 10)], kind="split"),
        # a batch whose two entries go opposite ways
        lambda rng: services.post_entries(
            requests=[
                EntryRequest(lines=[(b, -5), (a, 5)], kind="batch"),
                EntryRequest(lines=[(a, -5), (c, 5)], kind="batch"),
            ]
        ),
        # a hold on one account captured to another, in two transactions
        lambda rng: services.capture_hold(
            hold=services.place_hold(account=rng.choice(accounts), destination=b, amount=7, kind="card"),
            amount=rng.randint(1, 7),
        ),
    ]

    def worker(index: int) -> int:
        rng = random.Random(index)
        done = 0
        while time.monotonic() < deadline:
            rng.choice(moves)(rng)
            done += 1
        return done

    # when
    outcomes = race(4, worker)
    # then
    errors = [error for status, error in outcomes if status == "error"]
    assert not errors, errors  # in particular no deadlock (OperationalError) nor any other DatabaseError
    assert all(count > 10 for _, count in outcomes), outcomes
    assert sum(balance(x) for x in accounts) == total_before
    assert Account.objects.filter(pk__in=[x.pk for x in accounts]).aggregate(held=Sum("on_hold"))["held"] == 0
    assert verify_ledger().ok


def test_one_idempotency_key_posted_by_ten_threads_at_once_posts_once(db):
    # given
    wallet = funded_account(10_000)
    shop = AccountFactory()
    # when
    outcomes = race(
        10,
        lambda _: services.post_entry(lines=[(wallet, -1_000), (shop, 1_000)], kind="payment", idempotency_key="k-1"),
    )
    # then
    assert all(status == "ok" for status, _ in outcomes), outcomes
    assert len({entry.pk for _, entry in outcomes}) == 1
    assert JournalEntry.objects.filter(idempotency_key="k-1").count() == 1
    assert (balance(wallet), balance(shop)) == (9_000, 1_000)


def test_one_idempotency_key_on_disjoint_accounts_posts_once_and_refuses_the_other_payload(db):
    # given: two payloads under one key that lock different accounts, so only the unique key can decide
    first_wallet, second_wallet = funded_account(10_000), funded_account(10_000)
    shop_one, shop_two = AccountFactory(), AccountFactory()
    pairs = [(first_wallet, shop_one), (second_wallet, shop_two)]
    # when
    outcomes = race(
        10,
        lambda i: services.post_entry(
            lines=[(pairs[i % 2][0], -1_000), (pairs[i % 2][1], 1_000)], kind="payment", idempotency_key="k-2"
        ),
    )
    # then
    [entry] = JournalEntry.objects.filter(idempotency_key="k-2")
    for status, result in outcomes:
        if status == "ok":
            assert result.pk == entry.pk
        else:
            assert isinstance(result, BankError) and result.code == "idempotency_conflict", result
    assert sorted([balance(first_wallet), balance(second_wallet)]) == [9_000, 10_000]
    assert verify_ledger().ok


def test_two_sealers_racing_while_writers_post_seal_every_entry_exactly_once(validators):
    # given
    pairs = [(funded_account(1_000_000), AccountFactory()) for _ in range(3)]
    deadline = time.monotonic() + 1.5

    def work(index: int) -> int:
        rounds = 0
        while time.monotonic() < deadline:
            if index < 2:
                services.seal_pending_entries(max_entries_per_block=7)
            else:
                payer, payee = pairs[index - 2]
                services.post_entry(lines=[(payer, -1), (payee, 1)], kind="transfer")
            rounds += 1
        return rounds

    # when
    outcomes = race(5, work)
    services.seal_pending_entries()  # whatever committed after the sealers' last look
    # then
    errors = [error for status, error in outcomes if status == "error"]
    assert not errors, errors
    entries = JournalEntry.objects.count()
    assert not JournalEntry.objects.filter(block__isnull=True).exists()
    blocks = list(Block.objects.order_by("height"))
    assert len(blocks) > 2
    assert [block.height for block in blocks] == list(range(len(blocks)))
    assert sum(block.entry_count for block in blocks) == entries
    for block in blocks:
        assert JournalEntry.objects.filter(block=block).count() == block.entry_count
    report = verify_ledger()
    assert report.ok, report.failures
    assert (report.entries, report.unsealed) == (entries, 0)
