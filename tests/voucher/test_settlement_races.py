"""Settlement under real races on PostgreSQL: threads started together at a
barrier, each with its own connection. Whatever interleaves, every payment is
settled by exactly one line and the books still add up."""

import logging
import threading
import time
from collections import Counter

import psycopg
import pytest
from django.db import connections
from django.db.models import Sum

from bank.roles import grant_role
from tests.factories.voucher import merchant, staff, wallet_with_tokens
from tests.support.worker import running_database_url
from tests.voucher.settlement_support import refund_times_settled, sale, times_settled, yesterday
from tests.voucher.support import assert_ledger_ok, natural, race
from voucher import services
from voucher.models import Payment, Refund, SettlementBatch, SettlementLine
from voucher.selectors import batch_reconciliation
from voucher.services.common import token_accounts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _shops_with_sales(count: int, sales: int = 3) -> list:
    shops = [merchant() for _ in range(count)]
    for index, shop in enumerate(shops):
        for n in range(sales):
            sale(shop, 1_000 * (index + 1) + n, key=f"s{index}-{n}")
    return shops


def assert_each_payment_settled_once(shops) -> None:
    """No payment or refund is covered by two paid lines; each merchant's settled
    net + fees is exactly what its covered rows bring in; what is not settled is
    still in the merchant's token account."""
    for shop in shops:
        payments = list(Payment.objects.filter(merchant=shop))
        refunds = list(Refund.objects.filter(payment__merchant=shop))
        covered = [p for p in payments if times_settled(p) == 1]
        assert all(times_settled(p) <= 1 for p in payments)
        assert all(refund_times_settled(r) <= 1 for r in refunds)
        covered_refunds = sum(r.amount for r in refunds if refund_times_settled(r) == 1)
        lines = SettlementLine.objects.filter(merchant=shop, status="paid")
        paid = lines.aggregate(gross=Sum("gross"), net=Sum("net"), fee=Sum("fee"), n=Sum("payment_count"))
        net, fee = paid["net"] or 0, paid["fee"] or 0
        assert (paid["n"] or 0) == len(covered) and (paid["gross"] or 0) == sum(p.amount for p in covered)
        assert net + fee == sum(p.amount for p in covered) - covered_refunds
        assert natural(shop.settlement_account) == net
        received = sum(p.amount for p in payments) - sum(r.amount for r in refunds)
        assert natural(shop.token_account) == received - net - fee


def test_instant_settlements_requested_while_the_daily_batch_runs_pay_nobody_twice(settings):
    settings.VOUCHER_SETTLEMENT_CHUNK = 2  # many small transactions, so the calls interleave
    shops = _shops_with_sales(10)
    for index, shop in enumerate(shops[::3]):  # some also sold today: instant settlement covers that too
        services.pay(wallet=wallet_with_tokens(500), merchant=shop, amount=500, idempotency_key=f"today-{index}")
    ops = grant_role(staff("ops"), "settlement_operator")
    calls = [lambda: services.settle_day(day=yesterday())]
    calls += [
        lambda shop=shop: services.settle_merchant_now(merchant=shop, acting_user=ops, idempotency_key=f"now-{shop.pk}")
        for shop in shops[::2]
    ]
    outcomes = race(calls)
    # then every call ended well (an instant request that found nothing left says so)
    assert all(not isinstance(o, str) or o == "nothing_to_settle" for o in outcomes), outcomes
    daily_cutoff = SettlementBatch.objects.get(kind="daily").cutoff
    assert all(times_settled(p) == 1 for p in Payment.objects.filter(created_at__lt=daily_cutoff))
    assert_each_payment_settled_once(shops)
    daily = SettlementBatch.objects.get(kind="daily")
    assert daily.status == "done" and batch_reconciliation(daily)["balanced"]
    assert_ledger_ok()


def test_two_daily_batches_racing_settle_each_merchant_once(settings):
    settings.VOUCHER_SETTLEMENT_CHUNK = 3
    shops = _shops_with_sales(12, sales=2)
    outcomes = race([lambda: services.settle_day(day=yesterday()) for _ in range(3)])
    assert len({o.pk for o in outcomes}) == 1, outcomes  # one batch, resumed by the others
    batch = SettlementBatch.objects.get()
    counts = Counter(batch.lines.values_list("merchant_id", flat=True))
    assert set(counts.values()) == {1} and len(counts) == 12
    batch.refresh_from_db()
    assert (batch.status, batch.paid_count, batch.payment_count) == ("done", 12, 24)
    assert_each_payment_settled_once(shops)
    assert batch_reconciliation(batch)["balanced"]
    assert_ledger_ok()


def test_refunds_given_while_the_batch_runs_are_settled_once_and_never_overdraw(settings):
    settings.VOUCHER_SETTLEMENT_CHUNK = 1
    shops = _shops_with_sales(6, sales=2)
    targets = list(Payment.objects.order_by("pk"))[::2]
    calls = [lambda: services.settle_day(day=yesterday())]
    calls += [lambda p=p: services.refund_payment(payment=p, amount=300, idempotency_key=f"r{p.pk}") for p in targets]
    outcomes = race(calls)
    # a refund after its merchant was settled finds the token account empty: refused, nothing written
    assert all(not isinstance(o, str) or o == "insufficient_funds" for o in outcomes), outcomes
    assert_each_payment_settled_once(shops)
    assert_ledger_ok()


def test_a_payment_holding_the_reserve_goes_through_and_the_chunk_waiting_for_it_runs_again(settings, caplog):
    # given a chunk that holds its merchant's token account and waits for the reserve,
    # held by a transaction that took it first (a payment earning cashback locks the
    # reserve before the merchant's account: id order) and then asks for that token account
    settings.BANK_DEFERRED_LOCK_TIMEOUT_MS = 200
    caplog.set_level(logging.INFO, logger="voucher.services.settlement")
    [shop] = _shops_with_sales(1)
    reserve = token_accounts().reserve
    payment = psycopg.connect(running_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    payment.execute("SELECT id FROM bank_account WHERE id = %s FOR NO KEY UPDATE", [reserve.pk])
    outcomes = [None]

    def settle():
        try:
            outcomes[0] = services.settle_day(day=yesterday())
        finally:
            connections.close_all()

    settling = threading.Thread(target=settle)
    settling.start()
    try:
        deadline = time.monotonic() + 30
        while not _waiting_for(payment):
            assert time.monotonic() < deadline, "the chunk never waited for the reserve"
            time.sleep(0.02)
        # when the payment now asks for the merchant's token account (a lock cycle)
        payment.execute("SELECT id FROM bank_account WHERE id = %s FOR NO KEY UPDATE", [shop.token_account_id])
        payment.commit()  # then the payment got it: the chunk gave way instead of a deadlock error
    finally:
        payment.close()
        settling.join(timeout=60)
    # and the chunk ran again and settled the merchant once
    assert "house accounts busy, chunk retried" in caplog.text
    [batch] = outcomes
    assert batch is not None and batch.status == "done" and batch.paid_count == 1
    assert_each_payment_settled_once([shop])
    assert batch_reconciliation(batch)["balanced"]
    assert_ledger_ok()


def _waiting_for(holder: psycopg.Connection) -> bool:
    """Is some other backend waiting for a lock `holder` holds?"""
    url = running_database_url().replace("postgres://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as probe:
        query = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
        return probe.execute(query, [holder.info.backend_pid]).fetchone()[0] > 0


def test_a_batch_settled_by_two_threads_reports_progress_to_the_end_and_pays_each_merchant_once(settings):
    # given merchants spread over several ranges, settled by this thread and a helper
    settings.VOUCHER_SETTLEMENT_CHUNK = 2
    settings.VOUCHER_SETTLEMENT_WORKERS = 2
    shops = _shops_with_sales(7, sales=2)
    seen = []
    # when the batch runs
    batch = services.settle_day(day=yesterday(), progress=lambda done, total: seen.append((done, total)))
    # then progress only grows and ends with every merchant looked through
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (7, 7) and len(seen) == 4  # ranges of 2, 2, 2 and 1 merchants
    # and each merchant was paid once, by one line
    assert batch.status == "done" and batch.paid_count == 7
    assert Counter(batch.lines.values_list("merchant_id", flat=True)) == Counter({shop.pk: 1 for shop in shops})
    assert_each_payment_settled_once(shops)
    assert batch_reconciliation(batch)["balanced"]
    assert_ledger_ok()
