"""Voucher programs: made and edited by one staff member, approved by another
(maker-checker), with dated rules that change from a day on without
rewriting the past. Every step writes an audit row in its own transaction."""

from datetime import date

from django.db import transaction
from django.utils import timezone

from bank.models import BIGINT_MAX, MAX_AMOUNT, Account, Currency
from bank.services import record_audit
from voucher import errors
from voucher.clock import seoul_today
from voucher.models import District, MerchantCategory, ProgramRule, RuleTier, VoucherProgram
from voucher.services.common import lock_programs, require_staff

EDITABLE_FIELDS = (
    "name",
    "funder_account",
    "face_value",
    "per_person_monthly_cap",
    "per_person_total_cap",
    "budget",
    "expires_on",
    "valid_days",
    "eligible_categories",
    "excluded_categories",
    "eligible_districts",
    "max_merchant_annual_revenue",
    "is_transferable",
)


def create_program(*, actor, code: str, name: str, kind: str, funder_account: Account, budget: int, **fields):
    """A new program in draft. `fields` are any of EDITABLE_FIELDS."""
    require_staff(actor)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise errors.InvalidProgram(f"Unknown program fields: {sorted(unknown)}.", fields=sorted(unknown))
    if kind not in VoucherProgram.Kind.values:
        raise errors.InvalidProgram(f"Unknown kind {kind!r}.", field="kind")
    program = VoucherProgram(
        code=code, name=name, kind=kind, funder_account=funder_account, budget=budget, created_by=actor, **fields
    )
    _validate(program)
    with transaction.atomic():
        if VoucherProgram.objects.filter(code=code).exists():
            raise errors.InvalidProgram(f"A program with code {code!r} exists.", field="code")
        program.save()
        program.editors.add(actor)
        record_audit(actor=actor, action="voucher_program.create", target=program, after=_snapshot(program))
    return program


def update_program(*, actor, program: VoucherProgram, **changes) -> VoucherProgram:
    """Change a program that is not yet active. Whoever changes it may no longer approve it."""
    require_staff(actor)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise errors.InvalidProgram(f"Unknown program fields: {sorted(unknown)}.", fields=sorted(unknown))
    with transaction.atomic():
        [program] = lock_programs([program.pk])
        if program.status not in (VoucherProgram.Status.DRAFT, VoucherProgram.Status.PENDING_APPROVAL):
            raise errors.InvalidProgramTransition(
                "Only a draft or pending program can be edited; add a dated rule instead.", status=program.status
            )
        before = _snapshot(program)
        for field, value in changes.items():
            setattr(program, field, value)
        _validate(program)
        program.save()
        program.editors.add(actor)
        record_audit(
            actor=actor, action="voucher_program.update", target=program, before=before, after=_snapshot(program)
        )
    return program


def submit_program(*, actor, program: VoucherProgram) -> VoucherProgram:
    require_staff(actor)
    with transaction.atomic():
        [program] = lock_programs([program.pk])
        if program.kind in VoucherProgram.BONUS_KINDS and not program.rules.exists():
            raise errors.InvalidProgram("A bonus program needs at least one rule before approval.", field="rules")
        return _move(actor, program, VoucherProgram.Status.DRAFT, VoucherProgram.Status.PENDING_APPROVAL, "submit")


def approve_program(*, actor, program: VoucherProgram) -> VoucherProgram:
    """Activate a pending program. Refused (and the attempt audited) when the
    approver made or changed it: four eyes on every program that spends city money."""
    require_staff(actor)
    if program.editors.filter(pk=actor.pk).exists():
        with transaction.atomic():
            record_audit(
                actor=actor,
                action="voucher_program.approve_refused",
                target=program,
                reason="maker-checker: the approver made or changed this program",
            )
        raise errors.MakerCheckerViolation(program=program.code)
    with transaction.atomic():
        [program] = lock_programs([program.pk])
        if program.editors.filter(pk=actor.pk).exists():  # edited since the check above
            raise errors.MakerCheckerViolation(program=program.code)
        program.approved_by = actor
        program.approved_at = timezone.now()
        return _move(
            actor,
            program,
            VoucherProgram.Status.PENDING_APPROVAL,
            VoucherProgram.Status.ACTIVE,
            "approve",
            extra_fields=["approved_by", "approved_at"],
        )


def close_program(*, actor, program: VoucherProgram, reason: str = "") -> VoucherProgram:
    """Stop issuing. Lots already issued stay spendable until they expire."""
    require_staff(actor)
    with transaction.atomic():
        [program] = lock_programs([program.pk])
        if program.status == VoucherProgram.Status.CLOSED:
            raise errors.InvalidProgramTransition(status=program.status)
        return _move(actor, program, program.status, VoucherProgram.Status.CLOSED, "close", reason=reason)


def add_program_rule(
    *,
    actor,
    program: VoucherProgram,
    effective_from: date,
    rate_bp: int = 0,
    monthly_base_limit: int | None = None,
    tiers: list[tuple[int | None, int]] = (),
) -> ProgramRule:
    """Add the rule in force from `effective_from` on. `tiers` are
    (max merchant annual revenue or None, rate in basis points).

    Once a program has left draft, a rule may only start today or later and
    never replaces one: past benefits keep the rule they were computed by.
    """
    require_staff(actor)
    if not isinstance(effective_from, date):
        raise errors.InvalidProgram("effective_from must be a date.", field="effective_from")
    _check_rate(rate_bp)
    _check_optional_money(monthly_base_limit, "monthly_base_limit")
    for ceiling, tier_rate in tiers:
        _check_optional_money(ceiling, "tiers", most=BIGINT_MAX)
        _check_rate(tier_rate)
    with transaction.atomic():
        [program] = lock_programs([program.pk])
        if program.kind not in VoucherProgram.BONUS_KINDS:
            raise errors.ProgramKindMismatch("Only bonus programs have rate rules.", kind=program.kind)
        if program.status == VoucherProgram.Status.CLOSED:
            raise errors.InvalidProgramTransition(status=program.status)
        if program.status != VoucherProgram.Status.DRAFT and effective_from < seoul_today():
            raise errors.InvalidProgram("A rule of a live program cannot start in the past.", field="effective_from")
        if program.rules.filter(effective_from=effective_from).exists():
            raise errors.InvalidProgram(
                "A rule already starts that day; add one for a later day.", field="effective_from"
            )
        rule = ProgramRule.objects.create(
            program=program,
            effective_from=effective_from,
            rate_bp=rate_bp,
            monthly_base_limit=monthly_base_limit,
            created_by=actor,
        )
        RuleTier.objects.bulk_create(
            [RuleTier(rule=rule, max_annual_revenue=ceiling, rate_bp=tier_rate) for ceiling, tier_rate in tiers]
        )
        record_audit(
            actor=actor,
            action="voucher_program.add_rule",
            target=program,
            after={
                "effective_from": effective_from.isoformat(),
                "rate_bp": rate_bp,
                "monthly_base_limit": monthly_base_limit,
                "tiers": [list(tier) for tier in tiers],
            },
        )
    return rule


def _move(actor, program, expected: str, target: str, verb: str, extra_fields=(), reason: str = ""):
    if program.status != expected:
        raise errors.InvalidProgramTransition(status=program.status, wanted=target)
    program.status = target
    program.save(update_fields=["status", *extra_fields])
    record_audit(
        actor=actor,
        action=f"voucher_program.{verb}",
        target=program,
        before={"status": expected},
        after={"status": target},
        reason=reason,
    )
    return program


def check_program(program: VoucherProgram) -> None:
    """The checks create_program and update_program run, for a form to run first (raises InvalidProgram)."""
    _validate(program)


def _validate(program: VoucherProgram) -> None:
    funder = program.funder_account
    if funder.currency != Currency.KRW or funder.sign != 1 or funder.may_go_negative:
        # The budget must be money the funder really holds, not a line of credit.
        raise errors.InvalidProgram("The funder must be a KRW deposit account that cannot go negative.", field="funder")
    if type(program.budget) is not int or not 0 < program.budget <= MAX_AMOUNT:
        raise errors.InvalidProgram(
            f"The budget must be a positive number of won, at most {MAX_AMOUNT:,}.", field="budget"
        )
    for field in ("face_value", "per_person_monthly_cap", "per_person_total_cap"):
        _check_optional_money(getattr(program, field), field)
    _check_optional_money(program.max_merchant_annual_revenue, "max_merchant_annual_revenue", most=BIGINT_MAX)
    if (program.expires_on is None) == (program.valid_days is None):
        raise errors.InvalidProgram("Give either a fixed expiry date or a number of valid days.", field="expiry")
    if program.valid_days is not None and (type(program.valid_days) is not int or program.valid_days <= 0):
        raise errors.InvalidProgram("valid_days must be a positive whole number.", field="valid_days")
    for field, allowed in (
        ("eligible_categories", MerchantCategory.values),
        ("excluded_categories", MerchantCategory.values),
        ("eligible_districts", District.values),
    ):
        values = getattr(program, field)
        if not isinstance(values, list) or any(value not in allowed for value in values):
            raise errors.InvalidProgram(f"{field} must be a list of known codes.", field=field)


def _check_optional_money(value, field: str, most: int = MAX_AMOUNT) -> None:
    if value is not None and (type(value) is not int or not 0 < value <= most):
        raise errors.InvalidProgram(f"{field} must be a positive number of won, at most {most:,}.", field=field)


def _check_rate(rate) -> None:
    if type(rate) is not int or not 0 <= rate <= 10_000:
        raise errors.InvalidProgram("A rate is whole basis points from 0 to 10000.", field="rate_bp")


def _snapshot(program: VoucherProgram) -> dict:
    data = {field: getattr(program, field) for field in EDITABLE_FIELDS if field != "funder_account"}
    data["funder_account"] = program.funder_account_id
    data["expires_on"] = program.expires_on.isoformat() if program.expires_on else None
    data["status"] = program.status
    return data
