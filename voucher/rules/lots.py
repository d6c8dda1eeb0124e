"""Which of a wallet's lots a payment may spend, and in which order: what a
payment takes and what a wallet's page offers."""

from collections.abc import Callable
from datetime import date

from voucher.models import Lot, Merchant, Wallet


def spend_order(lot: Lot) -> tuple:
    """Soonest-expiring first; on the same day purpose-bound money before
    paid-in money, since it is the narrower of the two."""
    return (lot.expires_on, lot.program_id is None, lot.pk)


def live_lots(wallet: Wallet, day: date, accept: Callable[[Lot], bool]) -> list[Lot]:
    """The wallet's unexpired lots with a balance that `accept` lets us use, in spend order."""
    lots = (
        Lot.objects.select_related("account", "program")
        .filter(wallet=wallet, status=Lot.Status.ACTIVE, expires_on__gte=day, account__balance__gt=0)
        .order_by("expires_on", "pk")
    )
    return sorted((lot for lot in lots if accept(lot)), key=spend_order)


def eligible_at(merchant: Merchant) -> Callable[[Lot], bool]:
    return lambda lot: lot.program is None or lot.program.is_eligible_at(merchant)
