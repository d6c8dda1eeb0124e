from datetime import timedelta

from django.db import connection
from django.utils import timezone

from bank.models import Posting
from bank.services import seal_pending_entries
from bank.verification import verify_ledger
from tests.factories.voucher import citizen, grant_lot, merchant, wallet_with_tokens
from tests.voucher.support import assert_ledger_ok, natural, outstanding_bkrw, reserve_krw
from voucher import services
from voucher.selectors import wallet_balance
from voucher.services.common import RESERVE_CODE
from voucher.verification import CHECK_NAME


def test_top_up_moves_krw_into_the_reserve_and_mints_the_same_bkrw_in_one_entry(db):
    # given
    wallet = citizen(krw=100_000)
    # when
    topup = services.top_up(wallet=wallet, amount=30_000, idempotency_key="t1")
    # then
    assert natural(wallet.deposit_account) == 70_000
    assert wallet_balance(wallet) == 30_000
    assert reserve_krw() == 30_000 and outstanding_bkrw() == 30_000
    sums = {}
    for posting in Posting.objects.filter(entry=topup.entry):
        sums[posting.currency] = sums.get(posting.currency, 0) + posting.amount
    assert sums == {"KRW": 0, "BKRW": 0}
    assert_ledger_ok()


def test_reserve_identity_holds_after_every_operation(validators):
    alice, bob = wallet_with_tokens(50_000), citizen(krw=20_000)
    shop, supplier = merchant(), merchant(category="wholesale")
    assert_ledger_ok()
    grant_lot(alice, 10_000, valid_days=10, is_transferable=True)
    assert_ledger_ok()
    payment = services.pay(wallet=alice, merchant=shop, amount=45_000, idempotency_key="p1")
    assert_ledger_ok()
    services.refund_payment(payment=payment, amount=5_000, idempotency_key="r1")
    assert_ledger_ok()
    services.transfer(from_wallet=alice, to_wallet=bob, amount=3_000)
    assert_ledger_ok()
    services.pay_merchant(payer=shop, payee=supplier, amount=1_000, idempotency_key="b1")
    assert_ledger_ok()
    services.expire_lots(now=timezone.now() + timedelta(days=30))
    assert_ledger_ok()
    services.redeem(wallet=alice, idempotency_key="x1")
    assert_ledger_ok()
    seal_pending_entries()
    assert_ledger_ok()
    assert reserve_krw() > 0


def test_a_raw_sql_change_to_the_reserve_makes_verify_ledger_name_the_reserve_identity(db):
    # given
    services.top_up(wallet=citizen(krw=30_000), amount=30_000, idempotency_key="t1")
    assert verify_ledger().ok
    # when someone edits the reserve's balance behind the ledger's back
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bank_account SET balance = balance + 1 WHERE code = %s", [RESERVE_CODE])
    # then
    report = verify_ledger()
    assert not report.ok
    identity = [f for f in report.failures if f.kind == CHECK_NAME]
    assert len(identity) == 1
    assert "30,000" in identity[0].message and "30,001" in identity[0].message
