"""Assertions and helpers the voucher tests share."""

import threading
from datetime import datetime, time, timedelta

from django.db import connections

from bank.errors import BankError
from bank.models import Account, JournalEntry, Posting
from bank.verification import verify_ledger
from voucher.clock import SEOUL, seoul_today
from voucher.services.common import ISSUANCE_CODE, RESERVE_CODE


def ledger_size() -> tuple[int, int]:
    return JournalEntry.objects.count(), Posting.objects.count()


def natural(account: Account) -> int:
    account.refresh_from_db()
    return account.natural_balance


def reserve_krw() -> int:
    account = Account.objects.filter(code=RESERVE_CODE).first()
    return account.natural_balance if account else 0


def outstanding_bkrw() -> int:
    account = Account.objects.filter(code=ISSUANCE_CODE).first()
    return account.natural_balance if account else 0


def assert_ledger_ok() -> None:
    report = verify_ledger()
    assert report.ok, [str(f) for f in report.failures]
    assert outstanding_bkrw() == reserve_krw()


def after_days(days: int) -> datetime:
    """An instant `days` Seoul days from today (1 a.m.), for sweeping lots as if time had passed."""
    return datetime.combine(seoul_today() + timedelta(days=days), time(1), tzinfo=SEOUL)


def race(calls):
    """Run the calls at once; return each one's result or error code."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except BankError as error:
            outcomes[index] = error.code
        except Exception as error:  # surfaced in the assertion message, with which call it was
            outcomes[index] = f"call {index}: {error!r}"
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
