"""Expiry: lots past their last day are swept back to their funders, exactly once.

Safe on several workers at once: each batch takes only lots no one else has
locked (SKIP LOCKED) and still active, and turns them expired in the same
transaction as their ledger entry. The entry's idempotency key is the lot's,
so even a missed status change could never sweep a lot twice.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from bank.services import EntryRequest, lock_accounts, post_entries
from voucher.clock import seoul_today
from voucher.models import Lot
from voucher.services.common import Lines, ledger_key, token_accounts
from voucher.services.wallet_holds import expire_wallet_holds


@dataclass(frozen=True)
class ExpiryResult:
    lots: int  # lots turned expired, empty ones included
    amount: int  # tokens burned and KRW returned to funders


def expire_lots(*, now: datetime | None = None, batch_size: int = 200) -> ExpiryResult:
    """Sweep every active lot whose last valid (Seoul) day is before `now`'s."""
    now = now or timezone.now()
    # A hold never outlasts a lot it reserves (wallet_holds), so every hold on
    # these lots is past its expiry: released first, or the sweep of a held
    # lot's whole balance would be refused for the part on hold.
    expire_wallet_holds(now=now)
    day = seoul_today(now)
    lots_done = amount_done = 0
    while True:
        with transaction.atomic():
            due = list(
                Lot.objects.select_for_update(skip_locked=True, no_key=True)
                .filter(status=Lot.Status.ACTIVE, expires_on__lt=day)
                .order_by("pk")[:batch_size]
            )
            if not due:
                break
            amount_done += _sweep(due, now)
            lots_done += len(due)
        if len(due) < batch_size:
            break
    return ExpiryResult(lots=lots_done, amount=amount_done)


def _sweep(lots: list[Lot], now: datetime) -> int:
    """Burn the lots' balances to their funders and mark them expired. Must run
    under the lots' row locks, inside the caller's transaction."""
    tokens = token_accounts()
    accounts = lock_accounts(
        [tokens.reserve.pk, tokens.issuance.pk]
        + [lot.account_id for lot in lots]
        + [lot.funder_account_id for lot in lots]
    )
    requests, swept = [], []
    for lot in lots:
        balance = accounts[lot.account_id].balance
        if balance > 0:
            lines = Lines()
            lines.burn(tokens=tokens, tokens_from=lot.account_id, krw_to=lot.funder_account_id, amount=balance)
            requests.append(
                EntryRequest(
                    lines=lines.as_list(),
                    kind="voucher_expiry",
                    idempotency_key=ledger_key("expire", lot.pk),
                    allow_frozen_credit=True,  # a frozen funder or deposit still gets its money back
                )
            )
            swept.append(lot)
        lot.status = Lot.Status.EXPIRED
        lot.expired_at = now
        lot.expired_amount = max(balance, 0)
    entries = post_entries(requests=requests)
    for lot, entry in zip(swept, entries, strict=True):
        lot.expiry_entry = entry
    Lot.objects.bulk_update(lots, ["status", "expired_at", "expired_amount", "expiry_entry"])
    return sum(lot.expired_amount for lot in lots)
