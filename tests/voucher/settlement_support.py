"""Helpers of the settlement tests: payments made on a past Seoul day, and what
a settlement must add up to."""

from datetime import date, datetime, time, timedelta

from django.db.models import Sum

from bank.models import Account
from tests.factories.voucher import wallet_with_tokens
from voucher import services
from voucher.clock import SEOUL, seoul_today
from voucher.models import Merchant, Payment, Refund, SettlementLine
from voucher.services.settlement import FEE_INCOME_CODE


def yesterday() -> date:
    return seoul_today() - timedelta(days=1)


def on_day(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SEOUL)


def paid_on(day: date, payment: Payment, hour: int = 12) -> Payment:
    """Date a payment back to `day` (the tests cannot wait for midnight)."""
    Payment.objects.filter(pk=payment.pk).update(created_at=on_day(day, hour))
    payment.refresh_from_db()
    return payment


def sale(shop: Merchant, amount: int, day: date | None = None, key: str = "") -> Payment:
    """A citizen pays `amount` at `shop`, on `day` (default: yesterday)."""
    wallet = wallet_with_tokens(amount)
    payment = services.pay(wallet=wallet, merchant=shop, amount=amount, idempotency_key=key or f"sale-{wallet.pk}")
    return paid_on(day or yesterday(), payment)


def fee_income() -> int:
    account = Account.objects.filter(code=FEE_INCOME_CODE).first()
    return account.natural_balance if account else 0


def settled_total(shop: Merchant) -> int:
    return shop.settlement_lines.filter(status="paid").aggregate(total=Sum("net"))["total"] or 0


def times_settled(payment: Payment) -> int:
    """How many paid lines cover this payment: 1 once settled, never more."""
    return SettlementLine.objects.filter(
        merchant_id=payment.merchant_id,
        status="paid",
        payments_after__lt=payment.pk,
        payments_through__gte=payment.pk,
    ).count()


def refund_times_settled(refund: Refund) -> int:
    return SettlementLine.objects.filter(
        merchant_id=refund.payment.merchant_id,
        status="paid",
        refunds_after__lt=refund.pk,
        refunds_through__gte=refund.pk,
    ).count()
