"""Settlement under real races on PostgreSQL: threads started together at a
barrier, each with its own connection. Whatever interleaves, every payment is
settled by exactly one line and the books still add up."""

from collections import Counter

import pytest
from django.db.models import Sum

from bank.roles import grant_role
from tests.factories.voucher import merchant, staff, wallet_with_tokens
from tests.voucher.settlement_support import refund_times_settled, sale, times_settled, yesterday
from tests.voucher.support import assert_ledger_ok, natural, race
from voucher import services
from voucher.models import Payment, Refund, SettlementBatch, SettlementLine
from voucher.selectors import batch_reconciliation

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
