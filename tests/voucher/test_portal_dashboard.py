"""The portal's dashboard: today's sales and refunds in Seoul days, the next
settlement estimate, a 30-day chart, and a query count that does not grow."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.voucher.portal_support import make_shop
from voucher import services
from voucher.clock import seoul_today
from voucher.models import Payment
from voucher.selectors import daily_sales


def _backdate(payment: Payment, days: int) -> None:
    # Tests only: a payment made through the service, its record moved to an earlier day.
    Payment.objects.filter(pk=payment.pk).update(created_at=payment.created_at - timedelta(days=days))


def test_the_dashboard_shows_todays_sales_refunds_and_the_settlement_estimate(owner_client, shop, other):
    services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=12_000, idempotency_key="p2")
    old = services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=5_000, idempotency_key="p3")
    _backdate(old, 2)
    services.refund_payment(payment=shop.payment, amount=4_000, idempotency_key="r1")
    page = owner_client.get(reverse("portal:dashboard")).content.decode()
    # today: 30,000 + 12,000 in two payments (not the one two days ago, nor the other merchant's 44,000)
    assert "42,000 won" in page and "2 payments" in page
    assert "4,000 won" in page and "1 refund" in page
    # the estimate covers everything unsettled: 47,000 received, 4,000 refunded, a 0% tier fee
    assert "43,000 won" in page
    assert page.count("<rect ") == 30


def test_the_chart_counts_each_seoul_day_and_leaves_quiet_days_at_zero(shop):
    old = services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=5_000, idempotency_key="p3")
    _backdate(old, 3)
    too_old = services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=7_000, idempotency_key="p4")
    _backdate(too_old, 30)
    sales = daily_sales(shop.merchant)
    today = seoul_today()
    assert len(sales) == 30 and sales[0].day == today - timedelta(days=29) and sales[-1].day == today
    assert (sales[-1].count, sales[-1].total) == (1, 30_000)
    assert (sales[-4].count, sales[-4].total) == (1, 5_000)
    assert sum(s.total for s in sales) == 35_000


def test_the_dashboard_makes_the_same_few_queries_however_many_payments(owner_client, shop):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get(reverse("portal:dashboard")).status_code == 200
        return len(captured)

    first = queries()
    for number in range(20):
        payment = services.pay(wallet=shop.wallet, merchant=shop.merchant, amount=100, idempotency_key=f"q{number}")
        _backdate(payment, number)
        services.refund_payment(payment=payment, amount=10, idempotency_key=f"qr{number}")
    assert queries() == first == DASHBOARD_QUERIES


# session, user, membership with merchant, the 30-day chart, today's refunds, and the
# settlement estimate's five (the last settled ids, then payments, refunds, merchant payments in and out)
DASHBOARD_QUERIES = 10


def test_a_second_merchants_sales_never_show_on_the_first_ones_dashboard(client, db):
    mine, theirs = make_shop("a"), make_shop("b", amount=99_000)
    client.force_login(mine.owner)
    page = client.get(reverse("portal:dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "30,000 won" in page and "99,000 won" not in page
    assert theirs.payment.merchant_id != mine.merchant.pk
