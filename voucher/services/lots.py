"""Lots: finding or opening the lot a credit goes to, and taking a debit from the
lots chosen (which lots and in which order: voucher.rules.lots). Every function
here runs under its wallet's row lock."""

import uuid
from collections.abc import Sequence
from datetime import date

from bank.models import Account
from bank.services import open_account
from voucher.models import Lot, VoucherProgram, Wallet
from voucher.rules.lots import eligible_at, live_lots, spend_order

__all__ = ["allocate", "eligible_at", "find_lot", "is_transferable", "live_lots", "lot_for", "spend_order"]


def find_lot(*, wallet: Wallet, program: VoucherProgram | None, expires_on: date) -> Lot | None:
    return (
        Lot.objects.select_related("account")
        .filter(wallet=wallet, program=program, expires_on=expires_on, status=Lot.Status.ACTIVE)
        .first()
    )


def lot_for(*, wallet: Wallet, program: VoucherProgram | None, expires_on: date) -> Lot:
    """The wallet's active lot for (program, expiry), opened with its own BKRW account if new.

    Must run under the wallet's row lock, which is what makes the lookup and
    the insert one step (no two lots with the same key). Callers lock the
    accounts of lots that already exist (find_lot) before their other
    accounts; a lot opened here is new and invisible to others, so it may be
    locked last without breaking the lock order.
    """
    lot = find_lot(wallet=wallet, program=program, expires_on=expires_on)
    if lot is not None:
        return lot
    # An opaque code: the ledger never learns whose lot it is or which program.
    account = open_account(
        owner=wallet.owner,
        code=f"voucher:lot:{uuid.uuid4().hex}",
        currency="BKRW",
        normal_side=Account.NormalSide.LIABILITY,
    )
    funder = program.funder_account_id if program else wallet.deposit_account_id
    return Lot.objects.create(
        wallet=wallet, program=program, expires_on=expires_on, account=account, funder_account_id=funder
    )


def is_transferable(lot: Lot) -> bool:
    return lot.program is None or lot.program.is_transferable


def allocate(lots: Sequence[Lot], balances: dict[int, int], amount: int) -> list[tuple[Lot, int]]:
    """Take `amount` from `lots` in the order given, using the locked account
    balances. Returns (lot, amount taken) pairs; the caller checked the total."""
    taken = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(left, balances[lot.account_id])
        if take > 0:
            taken.append((lot, take))
            left -= take
    return taken
