"""Wallet holds: an amount reserved on a wallet for one merchant now, captured
later, whole or in part, as a real Payment (the row settlement and refunds
read), or voided, or expired. For reservations such as a tour pass bought
before its first use. Money moves only at capture, through post_entry.

The reservation is one bank Hold per lot it draws on (bank.services.holds), so
the lots' available balances drop at once and every later payment, transfer
or cash-out is checked against what is left. Capturing those bank holds
directly would credit the merchant with no Payment row: a capture here
releases them (bank.services.release_holds) and posts a payment entry in the
same transaction instead.

Lock order, voucher.services.common's with the hold first: WalletHold row ->
Wallet row -> bank Hold rows (by id) -> ledger accounts, all in one
lock_accounts call. A void or an expiry does not lock the wallet: releasing a
reservation only raises what the wallet may spend.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from bank import errors as bank_errors
from bank.models import Hold
from bank.services import check_not_paused, lock_accounts, place_hold, record_audit, release_holds
from voucher import errors
from voucher.clock import day_bounds, seoul_today
from voucher.limits import limits_on
from voucher.models import Lot, Merchant, Payment, Wallet, WalletHold, WalletHoldLot
from voucher.services.common import (
    check_amount,
    check_key,
    check_merchant_active,
    check_wallet_active,
    ledger_key,
    lock_wallets,
)
from voucher.services.lots import eligible_at, live_lots
from voucher.services.merchant_lock import note_accounts_locked
from voucher.services.merchants import get_merchant
from voucher.services.payment_store import NewPayment, committed_today, insert_payment
from voucher.services.payments import check_limits, post_payment_entry, take_from_lots

# The one rule of a payment's limits, wherever the payment path keeps it.

HOLD_KIND = "voucher_wallet_hold"
# A reservation is not a way to freeze a wallet's money indefinitely; card
# authorisations lapse within weeks too. A tour pass's window (72 h, or a
# choice pass's 7 days) fits well inside.
MAX_HOLD_DURATION = timedelta(days=31)


def authorize_hold(
    *,
    wallet: Wallet,
    merchant: Merchant,
    amount: int,
    idempotency_key: str,
    reference: str = "",
    expires_at: datetime,
    acting_user=None,
) -> WalletHold:
    """Reserve `amount` of the wallet's lots eligible at `merchant` until `expires_at`.

    The checks of a payment, at authorisation as a bank makes them: payments not
    paused, wallet and merchant active, the per-payment limit, and the daily
    limit counting today's payments and today's still-open holds (a capture is
    then never refused by a limit). Lots are drawn in the spend order of a
    payment (soonest-expiring first), but only lots valid through `expires_at`:
    a lot must not expire while part of it is reserved. Retrying with the same
    key returns the first hold; the same key with other terms is a conflict.
    """
    check_amount(amount)
    check_key(idempotency_key)
    _check_reference(reference)
    now = timezone.now()
    if not isinstance(expires_at, datetime) or timezone.is_naive(expires_at):
        raise errors.InvalidRequest("expires_at must be an aware datetime.", field="expires_at")
    if not now < expires_at <= now + MAX_HOLD_DURATION:
        raise errors.InvalidRequest(
            f"A hold expires in the future and within {MAX_HOLD_DURATION.days} days.", field="expires_at"
        )
    with transaction.atomic():
        wallet = lock_wallets(wallet)[wallet.pk]
        merchant = get_merchant(merchant.pk)
        earlier = WalletHold.objects.filter(wallet=wallet, idempotency_key=idempotency_key).first()
        if earlier is not None:
            terms = (earlier.merchant_id, earlier.amount, earlier.reference, earlier.expires_at)
            if terms != (merchant.pk, amount, reference, expires_at):
                raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, wallet_hold=earlier.pk)
            return earlier
        check_not_paused()  # after the replay: a retry of a finished authorisation still gets its answer
        check_wallet_active(wallet)
        check_merchant_active(merchant)
        day = seoul_today(now)
        check_limits(amount, committed_today(wallet.pk, day), limits_on(day))

        at_merchant = eligible_at(merchant)
        lots = live_lots(wallet, day, lambda lot: at_merchant(lot) and _lasts_until(lot, expires_at))
        accounts = lock_accounts([lot.account_id for lot in lots] + [merchant.token_account_id])
        balances = {lot.account_id: accounts[lot.account_id].available for lot in lots}
        taken, _ = take_from_lots(lots, balances, amount, merchant)

        hold = WalletHold.objects.create(
            wallet=wallet,
            merchant=merchant,
            amount=amount,
            reference=reference,
            idempotency_key=idempotency_key,
            authorized_by=acting_user if getattr(acting_user, "pk", None) else None,
            created_at=now,
            expires_at=expires_at,
        )
        rows = []
        for order, (lot, take) in enumerate(taken):
            try:
                bank_hold = place_hold(
                    account=lot.account_id,
                    destination=merchant.token_account_id,
                    amount=take,
                    kind=HOLD_KIND,
                    reference=reference,
                    idempotency_key=ledger_key("hold", hold.pk, lot.pk),
                    expires_at=expires_at,
                )
            except bank_errors.AccountFrozen as error:
                if error.details.get("account") == merchant.token_account_id:
                    raise errors.MerchantFrozen(merchant=merchant.pk) from None
                raise
            rows.append(WalletHoldLot(hold=hold, lot=lot, bank_hold=bank_hold, amount=take, spend_order=order))
        WalletHoldLot.objects.bulk_create(rows)
        _audit(acting_user, "wallet_hold.authorize", hold, after={"amount": amount, "merchant": merchant.pk})
    return hold


def capture_hold(*, hold: WalletHold, amount: int | None = None, idempotency_key: str, acting_user=None) -> Payment:
    """Turn `amount` (default: all) of an open hold into a Payment to its merchant,
    from the lots it reserved in their spend order; the rest is released.

    One capture per hold: retrying with the same key (and amount) returns the
    Payment; any other capture of a captured hold is hold_not_open. Refused
    while payments are paused or the wallet or merchant is frozen (the hold
    stays open, to be captured later or voided). The lots' eligibility and
    the limits were checked at authorisation, which is what the merchant was
    promised; they are not checked again."""
    check_key(idempotency_key)
    if amount is not None:
        check_amount(amount)
    with transaction.atomic():
        hold = _lock_hold(hold)
        wanted = hold.amount if amount is None else amount
        if hold.status == WalletHold.Status.CAPTURED and hold.capture_key == idempotency_key:
            if wanted != hold.captured_amount:
                raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, wallet_hold=hold.pk)
            return hold.payment
        _check_open(hold, timezone.now())
        if wanted > hold.amount:
            raise bank_errors.CaptureExceedsHold(hold=hold.pk, held=hold.amount, requested=wanted)
        check_not_paused()
        wallet = lock_wallets(hold.wallet)[hold.wallet_id]
        check_wallet_active(wallet)
        merchant = get_merchant(hold.merchant_id)
        check_merchant_active(merchant)

        reserved = list(hold.lots.select_related("lot__program").order_by("spend_order"))
        lots = [row.lot for row in reserved]
        taken, lines = take_from_lots(lots, {row.lot.account_id: row.amount for row in reserved}, wanted, merchant)
        from_lot = {lot.pk: take for lot, take in taken}
        # The bank holds' accounts and the merchant's token account, locked here
        # in one call; post_payment_entry then finds them all locked.
        release_holds(
            holds=[row.bank_hold_id for row in reserved],
            status=Hold.Status.CAPTURED,
            captured_amounts={row.bank_hold_id: from_lot.get(row.lot_id, 0) for row in reserved},
            lock_also=[merchant.token_account_id],
        )
        note_accounts_locked([merchant.token_account_id])
        payment_key = f"hold:{hold.uid.hex}"
        # post_payment_entry writes the entry under the merchant's token-account
        # lock, and the Payment row follows it: the order settlement relies on.
        entry = post_payment_entry(
            lines, wallet=wallet, merchant=merchant, reference=hold.reference, idempotency_key=payment_key
        )
        # The payment writer pay() uses (it checks the merchant's lock); the hold's own
        # audit row below names the person, so the payment writes none of its own.
        payment = insert_payment(
            NewPayment(
                wallet=wallet,
                merchant=merchant,
                amount=wanted,
                reference=hold.reference,
                idempotency_key=payment_key,
                entry=entry,
                taken=taken,
            )
        )
        _close(hold, WalletHold.Status.CAPTURED, captured_amount=wanted, capture_key=idempotency_key, payment=payment)
        _audit(acting_user, "wallet_hold.capture", hold, after={"captured": wanted, "payment": payment.pk})
    return payment


def void_hold(*, hold: WalletHold, acting_user=None, reason: str = "") -> WalletHold:
    """Release an open hold without moving money (a reservation cancelled).
    Voiding a voided hold returns it as it is; a captured or expired one is refused."""
    with transaction.atomic():
        hold = _lock_hold(hold)
        if hold.status == WalletHold.Status.VOIDED:
            return hold
        if hold.status == WalletHold.Status.EXPIRED:
            raise bank_errors.HoldExpired(wallet_hold=hold.pk)
        if hold.status != WalletHold.Status.OPEN:
            raise bank_errors.HoldNotOpen(wallet_hold=hold.pk, status=hold.status)
        release_holds(holds=list(hold.lots.values_list("bank_hold_id", flat=True)), status=Hold.Status.VOIDED)
        _close(hold, WalletHold.Status.VOIDED)
        _audit(acting_user, "wallet_hold.void", hold, after={"released": hold.amount}, reason=reason)
    return hold


def expire_wallet_holds(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """Release every open hold past its expiry; returns how many. Safe on several
    workers at once (each takes holds no other has locked, SKIP LOCKED) and
    alongside bank's own expire_holds, which may have released some of their
    bank holds first."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            due = list(
                WalletHold.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(status=WalletHold.Status.OPEN, expires_at__lte=now)
                .order_by("pk")[:batch_size]
            )
            if due:
                bank_holds = WalletHoldLot.objects.filter(hold__in=due).values_list("bank_hold_id", flat=True)
                release_holds(holds=list(bank_holds), status=Hold.Status.EXPIRED, now=now)
                for hold in due:
                    hold.status = WalletHold.Status.EXPIRED
                    hold.closed_at = now
                WalletHold.objects.bulk_update(due, ["status", "closed_at"])
        expired += len(due)
        if len(due) < batch_size:
            return expired


def _check_reference(reference) -> None:
    if not isinstance(reference, str) or len(reference) > 100:
        raise errors.InvalidRequest("reference must be text of at most 100 characters.", field="reference")


def _lasts_until(lot: Lot, moment: datetime) -> bool:
    """Is the lot still valid at `moment`? It is through the end of its (Seoul) last day."""
    return day_bounds(lot.expires_on)[1] >= moment


def _lock_hold(hold: WalletHold) -> WalletHold:
    locked = WalletHold.objects.select_for_update(no_key=True).filter(pk=hold.pk).first()
    if locked is None:
        raise errors.HoldNotFound(wallet_hold=hold.pk)
    return locked


def _check_open(hold: WalletHold, now: datetime) -> None:
    # An open hold past its expiry is expired whether or not the sweep has run yet.
    if hold.status == WalletHold.Status.EXPIRED or (hold.status == WalletHold.Status.OPEN and hold.expires_at <= now):
        raise bank_errors.HoldExpired(wallet_hold=hold.pk)
    if hold.status != WalletHold.Status.OPEN:
        raise bank_errors.HoldNotOpen(wallet_hold=hold.pk, status=hold.status)


def _close(hold: WalletHold, status: str, **changes) -> None:
    hold.status = status
    hold.closed_at = timezone.now()
    for name, value in changes.items():
        setattr(hold, name, value)
    hold.save(update_fields=["status", "closed_at", *changes])


def _audit(acting_user, action: str, hold: WalletHold, *, after: dict, reason: str = "") -> None:
    """Holds authorised, captured or voided by someone (a staff member, an
    operator's login) are audited; the expiry sweep is the system's own."""
    if acting_user is not None:
        record_audit(actor=acting_user, action=action, target=hold, after=after, reason=reason)
