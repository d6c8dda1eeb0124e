"""Read-only queries of the merchant portal. Nothing here writes.

Every figure is one SQL aggregate, so a page makes the same few queries
whether the merchant has ten payments or a million.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from voucher.clock import SEOUL, day_bounds, seoul_today
from voucher.models import Merchant, Payment, PaymentRequest, Refund

CHART_DAYS = 30


@dataclass(frozen=True)
class DaySales:
    day: date
    count: int
    total: int


def daily_sales(merchant: Merchant, *, last_day: date | None = None, days: int = CHART_DAYS) -> list[DaySales]:
    """The merchant's payments per Seoul day, `days` days up to `last_day`
    (today), days without sales included as zero. One query."""
    last_day = last_day or seoul_today()
    first_day = last_day - timedelta(days=days - 1)
    rows = (
        Payment.objects.filter(
            merchant=merchant, created_at__gte=day_bounds(first_day)[0], created_at__lt=day_bounds(last_day)[1]
        )
        .annotate(day=TruncDate("created_at", tzinfo=SEOUL))
        .values("day")
        .annotate(count=Count("pk"), total=Sum("amount"))
    )
    by_day = {row["day"]: row for row in rows}
    sales = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        row = by_day.get(day)
        sales.append(DaySales(day=day, count=row["count"] if row else 0, total=row["total"] if row else 0))
    return sales


def refunds_on(merchant: Merchant, day: date) -> dict:
    """Refunds the merchant gave on a Seoul day: count and total won. One query."""
    start, end = day_bounds(day)
    return Refund.objects.filter(payment__merchant=merchant, created_at__gte=start, created_at__lt=end).aggregate(
        count=Count("pk"), total=Sum("amount", default=0)
    )


def payments_for_portal(
    merchant: Merchant, *, since: date | None = None, until: date | None = None, reference: str = ""
) -> QuerySet[Payment]:
    """The merchant's payments, newest first; `since`/`until` are Seoul days (both
    included), `reference` a part of the payment's reference."""
    payments = Payment.objects.filter(merchant=merchant)
    if since is not None:
        payments = payments.filter(created_at__gte=day_bounds(since)[0])
    if until is not None:
        payments = payments.filter(created_at__lt=day_bounds(until)[1])
    if reference:
        payments = payments.filter(reference__icontains=reference)
    return payments.order_by("-created_at", "-pk")


def payment_for_portal(merchant: Merchant, payment_id: int) -> Payment | None:
    """One of the merchant's payments with its lots (and their programs) and refunds, or None."""
    return (
        Payment.objects.filter(merchant=merchant, pk=payment_id)
        .select_related("entry")
        .prefetch_related("lots__lot__program", "refunds")
        .first()
    )


def payment_requests_for_portal(merchant: Merchant) -> QuerySet[PaymentRequest]:
    return PaymentRequest.objects.filter(merchant=merchant).order_by("-pk")


def open_requests_count(merchant: Merchant) -> int:
    return PaymentRequest.objects.filter(Q(merchant=merchant) & Q(status=PaymentRequest.Status.OPEN)).count()
