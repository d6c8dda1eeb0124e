import io

from bank.models import Account, JournalEntry
from bank.services import seal_pending_entries
from tests.voucher.support import assert_ledger_ok
from voucher.demo import load_voucher_demo
from voucher.models import Benefit, Lot, Merchant, Payment, ProgramRule, VoucherProgram, Wallet


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (Account, JournalEntry, Wallet, Merchant, VoucherProgram, ProgramRule, Lot, Payment, Benefit)
    }


def test_the_voucher_demo_loads_once_however_often_it_runs(db):
    # when
    load_voucher_demo(io.StringIO())
    first = _counts()
    load_voucher_demo(io.StringIO())
    # then
    assert _counts() == first
    assert first["Wallet"] == 20 and first["Merchant"] == 13 and first["Payment"] == 20
    assert set(VoucherProgram.objects.values_list("status", flat=True)) == {"active"}
    assert VoucherProgram.objects.get(code="busan-cashback").rules.count() == 2
    assert len({m.district for m in Merchant.objects.all()}) >= 6
    assert_ledger_ok()


def test_the_voucher_demo_seals_into_attested_blocks_when_validators_exist(validators):
    load_voucher_demo(io.StringIO())
    assert seal_pending_entries()
    assert JournalEntry.objects.filter(block__isnull=True).count() == 0
    assert_ledger_ok()
