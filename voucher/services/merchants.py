"""Merchant onboarding, its logins (owner and clerks), and freezing, by staff, audited;
the settlement account, changed by the merchant's owner, audited."""

import re

from django.db import transaction

from bank.models import BIGINT_MAX, Account, Currency, Party
from bank.services import check_executing, open_account, open_party, record_audit, set_account_status
from voucher import errors
from voucher.models import District, Merchant, MerchantCategory, MerchantMember
from voucher.services.common import lock_merchant, require_staff

_BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)


def get_merchant(pk) -> Merchant:
    """The merchant with this id, unlocked (lock_merchant locks it). A service
    never lets Merchant.DoesNotExist out: an unknown or malformed id is
    MerchantNotFound, a 404 with its code."""
    if type(pk) is not int:  # a bool is an int in Python, and a text id is the caller's to parse
        raise errors.MerchantNotFound(merchant=repr(pk))
    merchant = Merchant.objects.filter(pk=pk).first()
    if merchant is None:
        raise errors.MerchantNotFound(merchant=pk)
    return merchant


def normalize_brn(number: str) -> str:
    """A Korean business registration number as 123-45-67890, its check digit verified."""
    digits = re.sub(r"[\s-]", "", number) if isinstance(number, str) else ""
    if not re.fullmatch(r"\d{10}", digits):
        raise errors.InvalidMerchant(
            "A business registration number has 10 digits.", field="business_registration_number"
        )
    if int(digits[9]) != brn_check_digit(digits[:9]):
        raise errors.InvalidMerchant("The check digit does not match.", field="business_registration_number")
    return f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"


def brn_check_digit(first_nine: str) -> int:
    values = [int(d) for d in first_nine]
    total = sum(v * w for v, w in zip(values, _BRN_WEIGHTS, strict=True)) + values[8] * 5 // 10
    return (10 - total % 10) % 10


def onboard_merchant(
    *,
    actor,
    business_registration_number: str,
    name: str,
    category: str,
    district: str,
    annual_revenue: int,
    settlement_account: Account | None = None,
    user=None,
) -> Merchant:
    """Register a merchant: its party, a BKRW token account and a KRW settlement account.
    `user`, if given, becomes the merchant's owner login."""
    require_staff(actor)
    brn = normalize_brn(business_registration_number)
    if category not in MerchantCategory.values:
        raise errors.InvalidMerchant(f"Unknown category {category!r}.", field="category")
    if district not in District.values:
        raise errors.InvalidMerchant(f"Unknown district {district!r}.", field="district")
    if type(annual_revenue) is not int or not 0 <= annual_revenue <= BIGINT_MAX:
        raise errors.InvalidMerchant("Annual revenue is a whole number of won.", field="annual_revenue")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise errors.InvalidMerchant("A name of at most 200 characters is required.", field="name")
    digits = brn.replace("-", "")
    with transaction.atomic():
        if Merchant.objects.filter(business_registration_number=brn).exists():
            raise errors.MerchantAlreadyRegistered(business_registration_number=brn)
        party = open_party(kind=Party.Kind.MERCHANT, external_ref=f"merchant:{digits}")
        if settlement_account is None:
            settlement_account = open_account(
                owner=party, code=f"krw:settlement:{digits}", currency="KRW", normal_side=Account.NormalSide.LIABILITY
            )
        if settlement_account.currency != Currency.KRW:
            raise errors.InvalidMerchant("The settlement account must be a KRW account.", field="settlement_account")
        token_account = open_account(
            owner=party, code=f"voucher:merchant:{digits}", currency="BKRW", normal_side=Account.NormalSide.LIABILITY
        )
        merchant = Merchant.objects.create(
            party=party,
            name=name.strip(),
            business_registration_number=brn,
            category=category,
            district=district,
            annual_revenue=annual_revenue,
            settlement_account=settlement_account,
            token_account=token_account,
            onboarded_by=actor,
        )
        record_audit(
            actor=actor,
            action="merchant.onboard",
            target=merchant,
            after={"category": category, "district": district, "annual_revenue": annual_revenue},
        )
        if user is not None:
            add_merchant_member(actor=actor, merchant=merchant, user=user, role=MerchantMember.Role.OWNER)
    return merchant


def add_merchant_member(*, actor, merchant: Merchant, user, role: str) -> MerchantMember:
    """Let `user` act for `merchant` as its owner or a clerk. Staff, or the
    merchant's owner, may do it. Safe to run again with the same role; a login
    already acting for another merchant, or in another role, is refused."""
    if role not in MerchantMember.Role.values:
        raise errors.InvalidRequest(f"Unknown role {role!r}.", field="role")
    is_owner = MerchantMember.objects.filter(
        user_id=getattr(actor, "pk", None), merchant=merchant, role=MerchantMember.Role.OWNER
    ).exists()
    if not is_owner:
        require_staff(actor)
    with transaction.atomic():
        member, created = MerchantMember.objects.get_or_create(user=user, defaults={"merchant": merchant, "role": role})
        if (member.merchant_id, member.role) != (merchant.pk, role):
            raise errors.InvalidRequest("This login already acts for a merchant.", field="user", member=member.pk)
        if created:
            record_audit(
                actor=actor, action="merchant.add_member", target=merchant, after={"user": user.pk, "role": role}
            )
    return member


def set_merchant_status(*, actor, merchant: Merchant, status: str, reason: str, approval=None) -> Merchant:
    """Freeze or unfreeze a merchant. Its token account is frozen in the ledger
    too, so a payment already past the merchant check is still refused under lock.
    A freeze is immediate; an unfreeze runs only as an approved request (`approval`)."""
    require_staff(actor)
    if status not in Merchant.Status.values:
        raise errors.InvalidRequest(f"Unknown status {status!r}.", field="status")
    if not isinstance(reason, str) or not reason.strip():
        raise errors.InvalidRequest("A reason is required.", field="reason")
    with transaction.atomic():
        merchant = lock_merchant(merchant)
        before = merchant.status
        if before == Merchant.Status.FROZEN and status != Merchant.Status.FROZEN:
            check_executing(approval, kinds=("unfreeze_merchant",), target=merchant)
        merchant.status = status
        merchant.save(update_fields=["status"])
        ledger_status = Account.Status.FROZEN if status == Merchant.Status.FROZEN else Account.Status.ACTIVE
        set_account_status(
            actor=actor, account=merchant.token_account_id, status=ledger_status, reason=reason, approval=approval
        )
        record_audit(
            actor=actor,
            action=f"merchant.{status}",
            target=merchant,
            before={"status": before},
            after={"status": status},
            reason=reason,
        )
    return merchant


def change_settlement_account(*, actor, merchant: Merchant, account: Account, reason: str = "") -> Merchant:
    """Pay the merchant's settlements into another of its own KRW accounts at the bank.

    Only the merchant's owner may do it (a clerk at the till may not redirect
    the money); the account must be an active KRW account of the merchant's
    own party, so no one can route a merchant's settlement to a third party."""
    if not MerchantMember.objects.filter(
        user_id=getattr(actor, "pk", None), merchant=merchant, role=MerchantMember.Role.OWNER
    ).exists():
        raise errors.MerchantOwnerOnly()
    with transaction.atomic():
        merchant = lock_merchant(merchant)
        account = Account.objects.filter(pk=getattr(account, "pk", None)).first()
        if (
            account is None
            or account.owner_id != merchant.party_id
            or account.currency != Currency.KRW
            or account.status != Account.Status.ACTIVE
        ):
            raise errors.InvalidRequest(
                "The settlement account must be an active KRW account of this merchant.", field="account"
            )
        before = merchant.settlement_account_id
        if before == account.pk:
            return merchant
        merchant.settlement_account = account
        merchant.save(update_fields=["settlement_account"])
        record_audit(
            actor=actor,
            action="merchant.change_settlement_account",
            target=merchant,
            before={"settlement_account": before},
            after={"settlement_account": account.pk},
            reason=reason or "changed by the owner in the merchant portal",
        )
    return merchant
