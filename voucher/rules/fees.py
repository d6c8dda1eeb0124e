"""Settlement fees: the rate by a merchant's annual-revenue tier under the
schedule in force on a day, and the fee on an amount. What a settlement charges
and what the portal's estimate shows."""

from datetime import date

from django.conf import settings

from voucher import errors
from voucher.models import BASIS_POINTS, Merchant


def fee_rate_bp(merchant: Merchant, day: date, *, instant: bool = False, schedule=None) -> int:
    """The merchant's fee rate in basis points on `day`, by the schedule in force then."""
    return rate_for_revenue(merchant.annual_revenue, tiers_in_force(day, schedule or fee_schedule()), instant)


def rate_for_revenue(annual_revenue: int, tiers: list[tuple[int | None, int]], instant: bool) -> int:
    """The rate of the first tier whose ceiling the revenue is within, plus the instant fee when asked."""
    rate = 0
    for ceiling, tier_rate in tiers:
        if ceiling is None or annual_revenue <= ceiling:
            rate = tier_rate
            break
    return rate + (settings.VOUCHER_INSTANT_SETTLEMENT_FEE_BP if instant else 0)


def fee_for(amount: int, rate_bp: int) -> int:
    """Rounded down to the won: the merchant never pays a fraction of a won more than the rate."""
    return amount * rate_bp // BASIS_POINTS if amount > 0 else 0


def fee_schedule() -> list[tuple[date, list[tuple[int | None, int]]]]:
    """The schedule in settings, parsed (a few rows: cheaper to read than to cache)."""
    return [
        (date.fromisoformat(row["effective_from"]), [(ceiling, int(rate)) for ceiling, rate in row["tiers"]])
        for row in settings.VOUCHER_SETTLEMENT_FEE_SCHEDULE
    ]


def tiers_in_force(day: date, schedule) -> list[tuple[int | None, int]]:
    """The fee tiers of the newest schedule dated on or before `day`; refused when none is."""
    in_force = [tiers for since, tiers in sorted(schedule, key=lambda row: row[0]) if since <= day]
    if not in_force:
        raise errors.InvalidRequest(f"No settlement fee schedule is in force on {day}.", field="day")
    return in_force[-1]
