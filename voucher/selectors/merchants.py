"""Read-only queries of merchants for the wallet API: the directory, a merchant's
payments, the programs spendable there. Nothing here writes."""

from datetime import date

from django.db.models import QuerySet

from voucher.clock import day_bounds
from voucher.models import Merchant, Payment, VoucherProgram


def merchant_payments(merchant: Merchant, *, since: date | None = None, until: date | None = None) -> QuerySet[Payment]:
    """The merchant's payments, newest first, with their refunds."""
    payments = Payment.objects.filter(merchant=merchant)
    if since is not None:
        payments = payments.filter(created_at__gte=day_bounds(since)[0])
    if until is not None:
        payments = payments.filter(created_at__lt=day_bounds(until)[1])
    return payments.select_related("merchant").prefetch_related("refunds").order_by("-pk")


def merchant_directory(*, category: str | None = None, district: str | None = None) -> QuerySet[Merchant]:
    """Active merchants a citizen may pay, by name."""
    merchants = Merchant.objects.filter(status=Merchant.Status.ACTIVE)
    if category:
        merchants = merchants.filter(category=category)
    if district:
        merchants = merchants.filter(district=district)
    return merchants.order_by("name", "pk")


def programs_for_merchant(merchant: Merchant) -> list[VoucherProgram]:
    """Active programs whose money may be spent at (or whose cashback is earned at) the merchant."""
    active = VoucherProgram.objects.filter(status=VoucherProgram.Status.ACTIVE).order_by("pk")
    return [program for program in active if program.is_eligible_at(merchant)]
