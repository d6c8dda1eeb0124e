"""Assertions the voucher tests share."""

from datetime import datetime, time, timedelta

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
