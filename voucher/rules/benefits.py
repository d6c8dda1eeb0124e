"""Which dated rule of a program applies, and how much of a person's caps is used
and left: what issuing a benefit checks and what a wallet's page shows."""

from dataclasses import dataclass
from datetime import date

from django.db.models import Sum

from voucher.clock import month_start
from voucher.models import Benefit, ProgramRule, VoucherProgram, Wallet


def rule_on(program: VoucherProgram, day: date) -> ProgramRule | None:
    """The rule in force on `day`: the latest one that started on or before it."""
    return (
        ProgramRule.objects.filter(program=program, effective_from__lte=day)
        .order_by("-effective_from")
        .prefetch_related("tiers")
        .first()
    )


@dataclass(frozen=True)
class Usage:
    month_amount: int  # benefit won this month
    month_base: int  # top-up or spending won that earned a bonus this month
    total_amount: int  # benefit won ever


def usage(program: VoucherProgram, wallet: Wallet, day: date) -> Usage:
    rows = Benefit.objects.filter(program=program, wallet=wallet)
    month = rows.filter(month=month_start(day)).aggregate(amount=Sum("amount"), base=Sum("base_amount"))
    total = rows.aggregate(amount=Sum("amount"))["amount"] if program.per_person_total_cap is not None else 0
    return Usage(month_amount=month["amount"] or 0, month_base=month["base"] or 0, total_amount=total or 0)


def person_room(program: VoucherProgram, used: Usage) -> int | None:
    """Benefit won the person may still get, or None when the program has no per-person cap."""
    rooms = []
    if program.per_person_monthly_cap is not None:
        rooms.append(program.per_person_monthly_cap - used.month_amount)
    if program.per_person_total_cap is not None:
        rooms.append(program.per_person_total_cap - used.total_amount)
    return max(0, min(rooms)) if rooms else None
