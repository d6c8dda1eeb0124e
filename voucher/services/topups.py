"""Top-up and cash-out: KRW from the owner's deposit into the reserve and the
same BKRW minted into a paid-in lot (plus any active top-up bonus), and back."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Sum

from bank import errors as bank_errors
from bank.services import lock_accounts, post_entry, use_minter_allowance
from voucher import errors
from voucher.clock import seoul_today
from voucher.limits import limits_on
from voucher.models import Redemption, TopUp, VoucherProgram, Wallet
from voucher.selectors import wallet_balance
from voucher.services.benefits import Bonus, bonus_for, record_benefit, rule_on
from voucher.services.common import (
    Lines,
    check_amount,
    check_key,
    check_wallet_active,
    ledger_key,
    lock_programs,
    lock_wallets,
    token_accounts,
)
from voucher.services.lots import find_lot, live_lots, lot_for


def top_up(*, wallet: Wallet, amount: int, idempotency_key: str) -> TopUp:
    """Move `amount` KRW from the wallet owner's deposit into the wallet as BKRW.

    Every active top-up bonus program adds its bonus from its funder in the
    same entry, within its rule, the person's caps, the budget, what the
    funder holds and the wallet's holding limit (the bonus shrinks to fit;
    the top-up itself must fit whole or is refused with over_wallet_limit).
    """
    check_amount(amount)
    check_key(idempotency_key)
    with transaction.atomic():
        wallet = lock_wallets(wallet)[wallet.pk]
        earlier = TopUp.objects.filter(wallet=wallet, idempotency_key=idempotency_key).first()
        if earlier is not None:
            if earlier.amount != amount:
                raise bank_errors.IdempotencyConflict(idempotency_key=idempotency_key, topup=earlier.pk)
            return earlier
        check_wallet_active(wallet)
        day = seoul_today()
        limits = limits_on(day)
        balance = wallet_balance(wallet)
        room = limits.max_balance(wallet.kyc_tier) - balance
        if amount > room:
            raise errors.OverWalletLimit(limit=limits.max_balance(wallet.kyc_tier), balance=balance, requested=amount)

        candidates = VoucherProgram.objects.filter(
            kind=VoucherProgram.Kind.TOPUP_BONUS, status=VoucherProgram.Status.ACTIVE
        ).values_list("pk", flat=True)
        programs = [p for p in lock_programs(candidates) if p.status == VoucherProgram.Status.ACTIVE]
        plain_expiry = day + timedelta(days=limits.plain_lot_valid_days)
        lot_keys = [(None, plain_expiry)] + [(p, p.lot_expiry(day)) for p in programs]
        existing = [find_lot(wallet=wallet, program=p, expires_on=e) for p, e in lot_keys]
        tokens = token_accounts()
        accounts = lock_accounts(
            [wallet.deposit_account_id, tokens.reserve.pk, tokens.issuance.pk]
            + [p.funder_account_id for p in programs]
            + [lot.account_id for lot in existing if lot]
        )

        lines = Lines()
        plain = existing[0] or lot_for(wallet=wallet, program=None, expires_on=plain_expiry)
        lines.mint(tokens=tokens, krw_from=wallet.deposit_account_id, to=plain.account_id, amount=amount)
        room -= amount
        funder_left = {p.funder_account_id: accounts[p.funder_account_id].available for p in programs}
        bonuses = []
        for program, found in zip(programs, existing[1:], strict=True):
            expires_on = program.lot_expiry(day)
            if expires_on < day:
                continue  # a fixed-date program past its date issues nothing more
            rule = rule_on(program, day)
            bonus = bonus_for(program=program, rule=rule, wallet=wallet, base=amount, merchant=None, day=day)
            value = min(bonus.amount, room, max(0, funder_left[program.funder_account_id]))
            if value <= 0:
                continue
            lot = found or lot_for(wallet=wallet, program=program, expires_on=expires_on)
            lines.mint(tokens=tokens, krw_from=program.funder_account_id, to=lot.account_id, amount=value)
            room -= value
            funder_left[program.funder_account_id] -= value
            bonuses.append((Bonus(program, value, bonus.base), lot))

        # Top-up and its bonuses are one mint of the wallet_topup minter; its row is the last lock taken.
        use_minter_allowance(minter="wallet_topup", amount=amount + sum(bonus.amount for bonus, _ in bonuses))
        entry = post_entry(
            lines=lines.as_list(), kind="voucher_topup", idempotency_key=ledger_key("topup", wallet.pk, idempotency_key)
        )
        topup = TopUp.objects.create(
            wallet=wallet,
            amount=amount,
            bonus_amount=sum(bonus.amount for bonus, _ in bonuses),
            lot=plain,
            entry=entry,
            idempotency_key=idempotency_key,
        )
        for bonus, lot in bonuses:
            record_benefit(
                program=bonus.program,
                wallet=wallet,
                lot=lot,
                amount=bonus.amount,
                base=bonus.base,
                day=day,
                entry=entry,
            )
        return topup


def redeem(*, wallet: Wallet, idempotency_key: str) -> Redemption:
    """Cash out the wallet's unused paid-in tokens to its deposit account.

    Allowed once at least the ruling share (60% by default) of what was paid
    in since the last cash-out has been used. Only paid-in lots are cashed
    out: bonuses, grants and rewards never are.
    """
    check_key(idempotency_key)
    with transaction.atomic():
        wallet = lock_wallets(wallet)[wallet.pk]
        earlier = Redemption.objects.filter(wallet=wallet, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return earlier
        check_wallet_active(wallet)
        day = seoul_today()
        limits = limits_on(day)
        last = wallet.redemptions.order_by("-created_at").values_list("created_at", flat=True).first()
        topups = wallet.topups.filter(created_at__gt=last) if last else wallet.topups.all()
        paid_in = topups.aggregate(total=Sum("amount"))["total"] or 0
        lots = live_lots(wallet, day, lambda lot: lot.program is None)
        tokens = token_accounts()
        accounts = lock_accounts(
            [wallet.deposit_account_id, tokens.reserve.pk, tokens.issuance.pk] + [lot.account_id for lot in lots]
        )
        unused = sum(accounts[lot.account_id].available for lot in lots)
        required = limits.redeem_min_used_percent
        used_percent = (paid_in - unused) * 100 // paid_in if paid_in else 0
        if unused <= 0 or paid_in <= 0 or (paid_in - unused) * 100 < required * paid_in:
            raise errors.RedemptionNotAllowed(
                paid_in=paid_in, unused=unused, used_percent=used_percent, required_percent=required
            )
        lines = Lines()
        for lot in lots:
            value = accounts[lot.account_id].available
            if value > 0:
                lines.burn(tokens=tokens, tokens_from=lot.account_id, krw_to=wallet.deposit_account_id, amount=value)
        entry = post_entry(
            lines=lines.as_list(),
            kind="voucher_redeem",
            idempotency_key=ledger_key("redeem", wallet.pk, idempotency_key),
            allow_frozen_credit=True,  # a frozen deposit account may still receive its owner's money
        )
        return Redemption.objects.create(
            wallet=wallet, amount=unused, paid_in=paid_in, idempotency_key=idempotency_key, entry=entry
        )
