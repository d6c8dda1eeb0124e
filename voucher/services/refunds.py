"""Refunds: whole or partial, back to the lots a payment came from.

The last-spent lot is refilled first (normally the longest-lived), so a
partial refund gives back the money that lasts. A lot that expired in the
meantime is not refilled: its share is burned and its KRW returns to its
funder. Cashback the payment earned is clawed back in proportion.
"""

from django.db import transaction

from bank import errors as bank_errors
from bank.services import post_entry, record_audit
from voucher import errors
from voucher.clock import seoul_today
from voucher.models import Lot, Payment, Refund
from voucher.services.common import (
    Lines,
    check_acting_user,
    check_amount,
    check_key,
    check_merchant_active,
    ledger_key,
    lock_lots,
    lock_wallets,
    token_accounts,
)
from voucher.services.merchant_lock import lock_ledger_accounts, require_merchant_locked
from voucher.services.merchants import get_merchant


def refund_payment(*, payment: Payment, amount: int, idempotency_key: str, acting_user=None) -> Refund:
    """Refund `amount` of `payment` from the merchant's token account.

    `acting_user` is the person who refunded (the merchant's staff, or the
    bank's): the refund's audit row names them. None for a system caller."""
    check_amount(amount)
    check_key(idempotency_key)
    check_acting_user(acting_user)
    with transaction.atomic():
        payment = Payment.objects.select_for_update(no_key=True).get(pk=payment.pk)
        earlier = Refund.objects.filter(payment=payment, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.amount != amount:
                raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, refund=earlier.pk)
            return earlier
        if amount > payment.refundable:
            raise errors.RefundExceedsPayment(refundable=payment.refundable, requested=amount)
        lock_wallets(payment.wallet)
        merchant = get_merchant(payment.merchant_id)
        check_merchant_active(merchant)
        spent = list(payment.lots.order_by("-spend_order"))
        lots = lock_lots([row.lot_id for row in spent] + ([payment.cashback_lot_id] if payment.cashback_lot_id else []))
        day = seoul_today()

        portions, left = [], amount
        for row in spent:
            take = min(left, row.amount - row.refunded_amount)
            if take > 0:
                portions.append((row, take))
                left -= take
        claw_due = payment.cashback_amount * (payment.refunded_amount + amount) // payment.amount
        claw_due -= payment.cashback_clawed_back
        cashback_lot = lots.get(payment.cashback_lot_id) if claw_due > 0 else None

        tokens = token_accounts()
        touched = [lots[row.lot_id] for row, _ in portions]
        ids = [merchant.token_account_id, tokens.reserve.pk, tokens.issuance.pk]
        ids += [lot.account_id for lot in touched] + [lot.funder_account_id for lot in touched]
        if cashback_lot:
            ids += [cashback_lot.account_id, cashback_lot.funder_account_id]
        accounts = lock_ledger_accounts(ids)

        lines = Lines()
        to_funder, refilled = 0, []
        for row, take in portions:
            lot = lots[row.lot_id]
            if lot.is_expired_on(day):
                lines.burn(
                    tokens=tokens, tokens_from=merchant.token_account_id, krw_to=lot.funder_account_id, amount=take
                )
                to_funder += take
            else:
                lines.add(merchant.token_account_id, -take)
                lines.add(lot.account_id, take)
                refilled.append((lot, take))
        clawed = 0
        if cashback_lot:
            clawed = _claw_back(lines, tokens, cashback_lot, claw_due, refilled, accounts, day)

        try:
            entry = post_entry(
                lines=lines.as_list(),
                kind="voucher_refund",
                reference=payment.reference,
                idempotency_key=ledger_key("refund", payment.pk, idempotency_key),
                allow_frozen_credit=True,  # a frozen wallet or funder still gets its money back
            )
        except bank_errors.AccountFrozen as error:
            if error.details.get("account") == merchant.token_account_id:
                raise errors.MerchantFrozen(merchant=merchant.pk)
            raise
        for row, take in portions:
            row.refunded_amount += take
            row.save(update_fields=["refunded_amount"])
        payment.refunded_amount += amount
        payment.cashback_clawed_back += clawed
        payment.save(update_fields=["refunded_amount", "cashback_clawed_back"])
        require_merchant_locked([merchant.token_account_id])
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            to_funder_amount=to_funder,
            cashback_clawed_back=clawed,
            idempotency_key=idempotency_key,
            entry=entry,
        )
        if acting_user is not None:
            after = {"payment": payment.pk, "amount": amount, "entry": entry.pk}
            record_audit(actor=acting_user, action="refund.create", target=refund, after=after)
        return refund


def _claw_back(lines: Lines, tokens, cashback_lot: Lot, due: int, refilled, accounts, day) -> int:
    """Take back `due` won of cashback: from the cashback lot while it lasts,
    the rest out of what this refund puts back in the wallet. Both go back
    to the cashback's funder. Returns what was taken back."""
    from_lot = 0
    if not cashback_lot.is_expired_on(day):
        from_lot = min(due, accounts[cashback_lot.account_id].available)
    if from_lot:
        lines.burn(
            tokens=tokens, tokens_from=cashback_lot.account_id, krw_to=cashback_lot.funder_account_id, amount=from_lot
        )
    short = due - from_lot
    cut_total = 0
    for lot, refilled_amount in refilled:
        cut = min(short - cut_total, refilled_amount)
        if cut <= 0:
            break
        lines.burn(tokens=tokens, tokens_from=lot.account_id, krw_to=cashback_lot.funder_account_id, amount=cut)
        cut_total += cut
    return from_lot + cut_total
