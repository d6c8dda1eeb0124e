"""Benefits under a program: how much a top-up or payment earns within the
program's budget and the person's caps, and recording what was issued (which dated
rule applies and how much of the caps is used: voucher.rules.benefits).

Callers hold the program's row lock (and the wallet's): that is what keeps
the budget and every person's cap from being overrun by concurrent requests.
"""

from dataclasses import dataclass
from datetime import date

from bank.models import JournalEntry
from voucher.clock import month_start
from voucher.models import BASIS_POINTS, Benefit, Lot, Merchant, Payment, ProgramRule, VoucherProgram, Wallet
from voucher.rules.benefits import Usage, person_room, rule_on, usage

__all__ = ["Bonus", "Usage", "bonus_for", "person_room", "record_benefit", "rule_on", "usage"]


@dataclass(frozen=True)
class Bonus:
    program: VoucherProgram
    amount: int
    base: int


def bonus_for(
    *,
    program: VoucherProgram,
    rule: ProgramRule | None,
    wallet: Wallet,
    base: int,
    merchant: Merchant | None,
    day: date,
) -> Bonus:
    """The bonus `base` won of top-up (merchant None) or spending earns under
    `rule` (the one of `day`, from rule_on), within the monthly base limit, the
    person's caps and the budget. When the budget is used up the bonus is
    zero: the top-up or payment itself still goes through."""
    rate = rule.rate_for(merchant) if rule else 0
    if rate <= 0 or base <= 0:
        return Bonus(program, 0, 0)
    used = usage(program, wallet, day)
    counted = base
    if rule.monthly_base_limit is not None:
        counted = max(0, min(base, rule.monthly_base_limit - used.month_base))
    amount = counted * rate // BASIS_POINTS  # whole won, rounded down in the citizen's disfavour by < 1 won
    room = person_room(program, used)
    amount = min(amount, program.budget_left, amount if room is None else room)
    return Bonus(program, max(0, amount), counted)


def record_benefit(
    *,
    program: VoucherProgram,
    wallet: Wallet,
    lot: Lot,
    amount: int,
    base: int,
    day: date,
    entry: JournalEntry,
    payment: Payment | None = None,
    idempotency_key: str | None = None,
    basis: str = Benefit.Basis.EARNED,
    issued_by=None,
) -> Benefit:
    """Count an issued benefit against the budget and the person's caps. Must
    run under the program's row lock, in the transaction of its ledger entry."""
    program.issued_total += amount
    program.save(update_fields=["issued_total"])
    return Benefit.objects.create(
        program=program,
        wallet=wallet,
        lot=lot,
        amount=amount,
        base_amount=base,
        month=month_start(day),
        entry=entry,
        payment=payment,
        idempotency_key=idempotency_key or "",
        basis=basis,
        issued_by=issued_by if getattr(issued_by, "pk", None) else None,
    )
