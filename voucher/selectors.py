"""Read-only queries of the token for views, tasks and other apps. Nothing here writes.

Balances come from the ledger accounts behind the lots, never from a copy.
"""

from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet, Sum

from voucher.clock import seoul_today
from voucher.models import Lot, Merchant, VoucherProgram, Wallet
from voucher.services.benefits import person_room, rule_on, usage
from voucher.services.lots import eligible_at, live_lots, spend_order


def wallet_balance(wallet: Wallet) -> int:
    """Everything the wallet holds: the sum of its lots' ledger balances."""
    return Lot.objects.filter(wallet=wallet).aggregate(total=Sum("account__balance"))["total"] or 0


def lots_of(wallet: Wallet) -> QuerySet[Lot]:
    """The wallet's lots that hold tokens, soonest-expiring first, with account and program fetched."""
    return (
        Lot.objects.select_related("account", "program")
        .filter(wallet=wallet, status=Lot.Status.ACTIVE, account__balance__gt=0)
        .order_by("expires_on", "pk")
    )


@dataclass(frozen=True)
class Spendable:
    total: int
    lots: list[Lot]  # in the order a payment would spend them


def spendable_at(wallet: Wallet, merchant: Merchant, day: date | None = None) -> Spendable:
    """What a payment at `merchant` could spend today, and from which lots."""
    lots = live_lots(wallet, day or seoul_today(), eligible_at(merchant))
    return Spendable(total=sum(lot.balance for lot in lots), lots=sorted(lots, key=spend_order))


def benefits_this_month(wallet: Wallet, program: VoucherProgram, day: date | None = None) -> dict:
    """Caps used and left for one person under one program this (Seoul) month."""
    day = day or seoul_today()
    program = VoucherProgram.objects.get(pk=program.pk)  # the caller's copy may predate the latest issue
    used = usage(program, wallet, day)
    rule = rule_on(program, day)
    base_limit = rule.monthly_base_limit if rule else None
    return {
        "program": program.code,
        "month": day.replace(day=1),
        "benefit_used": used.month_amount,
        "benefit_cap": program.per_person_monthly_cap,
        "benefit_left": person_room(program, used),
        "base_used": used.month_base,
        "base_limit": base_limit,
        "base_left": None if base_limit is None else max(0, base_limit - used.month_base),
        "budget_left": program.budget_left,
    }
