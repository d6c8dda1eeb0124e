"""Bulk writers post to busy house accounts last (deferred_balances): every other
account is locked and written first, the house accounts' changes are checked by
the same rules and written when the block ends, and a house account that stays
locked makes the writer give way (AccountBusy) instead of deadlocking."""

import threading

import psycopg
import pytest
from django.db import connections, transaction

from bank import errors
from bank.models import Account, Posting
from bank.services import EntryRequest, deferred_balances, lock_account_rows, post_locked
from tests.factories import AccountFactory, funded_account
from tests.support.worker import running_database_url


def _pay_house(payer: Account, house: Account, amount: int, key: str, house_before_end: list | None = None) -> None:
    """`payer` pays `house`, with the house account's balance deferred to the end of the block."""
    with deferred_balances([house]) as later:
        post_locked(
            [EntryRequest(lines=[(payer, -amount), (house, amount)], kind="test_fee", idempotency_key=key)],
            lock_account_rows([payer.pk]),
            deferred=later,
        )
        if house_before_end is not None:
            house_before_end.append(Account.objects.get(pk=house.pk).natural_balance)


@pytest.mark.django_db
def test_the_house_account_is_written_when_the_block_ends():
    payer, house = funded_account(10_000), AccountFactory()
    seen = []
    with transaction.atomic():
        _pay_house(payer, house, 3_000, "fee-1", house_before_end=seen)
    # until the block ended the house account was not written; then it was
    assert seen == [0]
    payer.refresh_from_db()
    house.refresh_from_db()
    assert (payer.natural_balance, house.natural_balance) == (7_000, 3_000)
    assert Posting.objects.filter(account=house).count() == 1


@pytest.mark.django_db
def test_a_house_account_that_would_be_overdrawn_is_refused_and_nothing_is_written():
    # given a guarded house account holding 500
    house, payee = funded_account(500), AccountFactory()
    postings = Posting.objects.count()
    # when a bulk entry takes 800 out of it
    with pytest.raises(errors.InsufficientFunds), transaction.atomic():
        with deferred_balances([house]) as later:
            post_locked(
                [EntryRequest(lines=[(house, -800), (payee, 800)], kind="test_payout")],
                lock_account_rows([payee.pk]),
                deferred=later,
            )
    # then neither account changed and no posting was kept
    house.refresh_from_db()
    payee.refresh_from_db()
    assert (house.natural_balance, payee.natural_balance, Posting.objects.count()) == (500, 0, postings)


@pytest.mark.django_db
def test_a_frozen_house_account_is_refused():
    payer, house = funded_account(1_000), AccountFactory(status=Account.Status.FROZEN)
    with pytest.raises(errors.AccountFrozen), transaction.atomic():
        _pay_house(payer, house, 100, "fee-frozen")
    payer.refresh_from_db()
    assert payer.natural_balance == 1_000


@pytest.mark.django_db
def test_an_account_neither_locked_nor_deferred_is_refused():
    payer, house, stranger = funded_account(1_000), AccountFactory(), AccountFactory()
    with pytest.raises(errors.InvalidEntry), transaction.atomic():
        with deferred_balances([house]) as later:
            post_locked(
                [EntryRequest(lines=[(payer, -100), (stranger, 100)], kind="test_fee")],
                lock_account_rows([payer.pk]),
                deferred=later,
            )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_house_account_locked_too_long_makes_the_writer_give_way(settings):
    # given another transaction holding the house account (a payment that took it first, in id order)
    settings.BANK_DEFERRED_LOCK_TIMEOUT_MS = 100
    payer, house = funded_account(1_000), AccountFactory()
    holder = psycopg.connect(running_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    holder.execute("SELECT id FROM bank_account WHERE id = %s FOR NO KEY UPDATE", [house.pk])
    try:
        # when a bulk writer reaches the end of its block
        with pytest.raises(errors.AccountBusy), transaction.atomic():
            _pay_house(payer, house, 100, "fee-busy")
    finally:
        holder.rollback()
        holder.close()
    # then it rolled back whole, and runs through once the holder is done
    payer.refresh_from_db()
    assert payer.natural_balance == 1_000 and not Posting.objects.filter(account=house).exists()
    with transaction.atomic():
        _pay_house(payer, house, 100, "fee-busy")
    house.refresh_from_db()
    assert house.natural_balance == 100


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_deferring_the_same_house_account_both_land(settings):
    # given two bulk writers on different payers, racing to the same house account
    payers, house = [funded_account(1_000) for _ in range(2)], AccountFactory()
    start, failures = threading.Barrier(2), []

    def write(payer, key):
        try:
            start.wait(timeout=10)
            for n in range(20):
                with transaction.atomic():
                    _pay_house(payer, house, 10, f"{key}-{n}")
        except Exception as error:  # reported below
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(payer, f"w{n}")) for n, payer in enumerate(payers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then every change of both is in the house account's balance, none lost to the other
    assert failures == []
    house.refresh_from_db()
    assert house.natural_balance == 400
    assert all(Account.objects.get(pk=p.pk).natural_balance == 800 for p in payers)
