from datetime import timedelta

from bank.models import JournalEntry
from tests.factories.voucher import citizen, grant_lot, merchant, wallet_with_tokens
from tests.voucher.support import after_days, assert_ledger_ok, natural
from voucher import services, tasks
from voucher.clock import seoul_today
from voucher.models import Lot
from voucher.selectors import spendable_at, wallet_balance


def test_expired_lots_go_back_to_their_funders_exactly_once(db):
    # given a 10-day grant, a 60-day grant and paid-in tokens
    wallet = wallet_with_tokens(5_000)
    short = grant_lot(wallet, 7_000, valid_days=10)
    long = grant_lot(wallet, 3_000, valid_days=60)
    funder_before = natural(short.funder_account)
    # when the sweep runs twice after day 10
    first = services.expire_lots(now=after_days(11))
    second = services.expire_lots(now=after_days(11))
    # then only the short grant expired, once
    assert (first.lots, first.amount) == (1, 7_000)
    assert (second.lots, second.amount) == (0, 0)
    lot = Lot.objects.get(program=short)
    assert lot.status == Lot.Status.EXPIRED and lot.expired_amount == 7_000 and lot.balance == 0
    assert JournalEntry.objects.filter(kind="voucher_expiry").count() == 1
    assert natural(short.funder_account) == funder_before + 7_000
    assert Lot.objects.get(program=long).status == Lot.Status.ACTIVE
    assert wallet_balance(wallet) == 8_000
    assert_ledger_ok()


def test_a_lot_is_spendable_through_its_last_day_only(db):
    wallet = citizen()
    grant_lot(wallet, 1_000, valid_days=3)
    shop = merchant()
    assert spendable_at(wallet, shop, seoul_today() + timedelta(days=3)).total == 1_000
    assert spendable_at(wallet, shop, seoul_today() + timedelta(days=4)).total == 0


def test_expired_paid_in_tokens_go_back_to_the_owners_deposit(db):
    wallet = wallet_with_tokens(5_000)
    deposit_before = natural(wallet.deposit_account)
    result = services.expire_lots(now=after_days(5 * 365 + 1))
    assert result.amount == 5_000
    assert natural(wallet.deposit_account) == deposit_before + 5_000
    assert_ledger_ok()


def test_the_task_sweeps_nothing_before_anything_expires(db):
    grant_lot(citizen(), 1_000, valid_days=3)
    assert tasks.expire_lots.delay().get() == 0
