"""Instant settlement: a merchant's owner (or bank staff) settles everything
received up to now, at once, at the tier rate plus the instant fee."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from bank.services import record_audit
from bank.services.controls import require_role
from voucher import errors
from voucher.clock import seoul_today
from voucher.models import Merchant, MerchantMember, SettlementBatch, SettlementLine
from voucher.services.common import check_key
from voucher.services.settlement.batch import RUN_PERMISSION
from voucher.services.settlement.chunk import HeldReason, refresh_totals, settle_merchants
from voucher.services.settlement.sql import lock_merchant_range


def settle_merchant_now(*, merchant: Merchant, acting_user, idempotency_key: str) -> SettlementLine:
    """Settle everything the merchant has received up to now, at once, at the
    tier rate plus the instant fee. Only the merchant's owner or bank staff may
    ask. A repeated key returns the first line and pays nothing new."""
    check_key(idempotency_key)
    if not isinstance(merchant, Merchant) or merchant.pk is None:
        raise errors.InvalidRequest("No such merchant.", field="merchant")
    _require_owner_or_staff(acting_user, merchant)
    key = f"{merchant.pk}:{idempotency_key}"
    earlier = _instant_line(key)
    if earlier is not None:
        return earlier
    now = timezone.now()
    try:
        with transaction.atomic():
            batch = SettlementBatch.objects.create(
                period=seoul_today(now),
                kind=SettlementBatch.Kind.INSTANT,
                cutoff=now,
                requested_by=acting_user if getattr(acting_user, "pk", None) else None,
                idempotency_key=key,
            )
            [draft] = settle_merchants(batch, lock_merchant_range(merchant.pk, merchant.pk), instant=True) or [None]
            if draft is None:  # nothing received since the last settlement
                raise errors.NothingToSettle()
            if draft.status == SettlementLine.Status.HELD:
                if draft.held_reason == HeldReason.MERCHANT_FROZEN:
                    raise errors.MerchantFrozen(merchant=merchant.pk)
                if draft.held_reason == HeldReason.ACCOUNT_FROZEN:
                    raise errors.MerchantFrozen(merchant=merchant.pk, reason=draft.held_reason)
                raise errors.NothingToSettle(reason=draft.held_reason)
            if draft.burned == 0:
                raise errors.NothingToSettle()
            line = SettlementLine.objects.select_related("batch", "merchant").get(batch=batch, merchant=merchant)
            refresh_totals(batch)
            batch.status = SettlementBatch.Status.DONE
            batch.finished_at = timezone.now()
            batch.save(update_fields=["status", "finished_at"])
            record_audit(
                actor=acting_user,
                action="voucher.settle_merchant_now",
                target=line,
                after={"merchant": merchant.pk, "net": line.net, "fee": line.fee, "payments": line.payment_count},
            )
            return line
    except IntegrityError:  # the same key raced us and won: its line is the answer
        earlier = _instant_line(key)
        if earlier is None:
            raise
        return earlier


def _instant_line(key: str) -> SettlementLine | None:
    return SettlementLine.objects.filter(batch__idempotency_key=key).select_related("batch", "merchant").first()


def _require_owner_or_staff(user, merchant: Merchant) -> None:
    if user is None or not getattr(user, "is_active", False):
        raise errors.MerchantOwnerOnly()
    if getattr(user, "is_staff", False):
        require_role(user, RUN_PERMISSION)
        return
    is_owner = MerchantMember.objects.filter(
        user_id=user.pk, merchant_id=merchant.pk, role=MerchantMember.Role.OWNER
    ).exists()
    if not is_owner:
        raise errors.MerchantOwnerOnly()
