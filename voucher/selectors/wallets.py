"""Read-only queries of a wallet for views, tasks and other apps: who it is, what it
holds and may spend, its history and benefits. Nothing here writes.

Balances come from the ledger accounts behind the lots, never from a copy.
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery, Sum

from bank.models import ApiToken, DeviceKey, JournalEntry, Party, Posting
from bank.prepared import Columns, fetch
from voucher.clock import day_bounds, seoul_today
from voucher.models import Benefit, Lot, Merchant, VoucherProgram, Wallet
from voucher.rules.benefits import person_room, rule_on, usage
from voucher.rules.lots import eligible_at, live_lots, spend_order


def wallet_of_user(user, *, device_id: int | None = None) -> tuple[Wallet | None, DeviceKey | None]:
    """The user's wallet with its owner fetched, and the owner's active device key
    `device_id` when asked for and there is one: a signed request's signer,
    read with the wallet (on PostgreSQL in one prepared statement)."""
    if connection.vendor != "postgresql":
        wallet = Wallet.objects.select_related("owner").filter(user=user).first()
        device = None
        if wallet is not None and device_id is not None:
            device = DeviceKey.objects.filter(pk=device_id, party=wallet.owner, status=DeviceKey.Status.ACTIVE).first()
        return wallet, device
    rows = fetch(_WALLET_OF_USER_SQL, {"user": user.pk, "device": device_id})
    if not rows:
        return None, None
    row = rows[0]
    wallet = _WALLET.build(row[: len(_WALLET)])
    wallet.owner = _PARTY.build(row[len(_WALLET) : len(_WALLET) + len(_PARTY)])
    device_row = row[len(_WALLET) + len(_PARTY) :]
    return wallet, (_DEVICE.build(device_row) if device_row[0] is not None else None)


def token_login_with_wallet(digest: str, *, device_id: int | None = None) -> tuple | None:
    """PostgreSQL only: the API token whose digest is `digest` with its user, and that
    user's wallet and device key as wallet_of_user reads them, in one prepared
    statement; None when no token has this digest. Returns (token, wallet or None,
    device or None); the caller checks the token's expiry and revocation."""
    rows = fetch(_TOKEN_LOGIN_SQL, {"digest": digest, "device": device_id})
    if not rows:
        return None
    row, start = rows[0], 0
    built = []
    for columns in (_TOKEN, _USER, _WALLET, _PARTY, _DEVICE):
        values = row[start : start + len(columns)]
        start += len(columns)
        built.append(columns.build(values) if values[0] is not None else None)
    token, token.user, wallet, owner, device = built
    if wallet is not None:
        wallet.owner = owner
    return token, wallet, device


_WALLET, _PARTY, _DEVICE = Columns(Wallet), Columns(Party), Columns(DeviceKey)
_TOKEN, _USER = Columns(ApiToken), Columns(get_user_model())
_SIGNING_KEY = f"""LEFT JOIN bank_devicekey AS d
    ON d.id = %(device)s AND d.party_id = w.owner_id AND d.status = '{DeviceKey.Status.ACTIVE.value}'"""
_WALLET_OF_USER_SQL = f"""
SELECT {_WALLET.select("w")}, {_PARTY.select("p")}, {_DEVICE.select("d")}
FROM voucher_wallet AS w
JOIN bank_party AS p ON p.id = w.owner_id
{_SIGNING_KEY}
WHERE w.user_id = %(user)s
"""
_TOKEN_LOGIN_SQL = f"""
SELECT {_TOKEN.select("t")}, {_USER.select("u")}, {_WALLET.select("w")}, {_PARTY.select("p")}, {_DEVICE.select("d")}
FROM {ApiToken._meta.db_table} AS t
JOIN {get_user_model()._meta.db_table} AS u ON u.id = t.user_id
LEFT JOIN voucher_wallet AS w ON w.user_id = u.id
LEFT JOIN bank_party AS p ON p.id = w.owner_id
{_SIGNING_KEY}
WHERE t.digest = %(digest)s
"""


def wallet_balance(wallet: Wallet) -> int:
    """Everything the wallet holds: the sum of its lots' ledger balances."""
    return Lot.objects.filter(wallet=wallet).aggregate(total=Sum("account__balance"))["total"] or 0


def lots_of(wallet: Wallet) -> QuerySet[Lot]:
    """The wallet's lots that hold tokens, soonest-expiring first, with account and program fetched."""
    return (
        Lot.objects.select_related("account", "program")
        .filter(wallet=wallet, status=Lot.Status.ACTIVE, account__balance__gt=0)
        .order_by("expires_on", "pk")
    )


@dataclass(frozen=True)
class Spendable:
    total: int
    lots: list[Lot]  # in the order a payment would spend them


def spendable_at(wallet: Wallet, merchant: Merchant, day: date | None = None) -> Spendable:
    """What a payment at `merchant` could spend today, and from which lots."""
    lots = live_lots(wallet, day or seoul_today(), eligible_at(merchant))
    return Spendable(total=sum(lot.balance for lot in lots), lots=sorted(lots, key=spend_order))


def benefits_this_month(wallet: Wallet, program: VoucherProgram, day: date | None = None) -> dict:
    """Caps used and left for one person under one program this (Seoul) month."""
    day = day or seoul_today()
    program = VoucherProgram.objects.get(pk=program.pk)  # the caller's copy may predate the latest issue
    used = usage(program, wallet, day)
    rule = rule_on(program, day)
    base_limit = rule.monthly_base_limit if rule else None
    return {
        "program": program.code,
        "month": day.replace(day=1),
        "benefit_used": used.month_amount,
        "benefit_cap": program.per_person_monthly_cap,
        "benefit_left": person_room(program, used),
        "base_used": used.month_base,
        "base_limit": base_limit,
        "base_left": None if base_limit is None else max(0, base_limit - used.month_base),
        "budget_left": program.budget_left,
    }


# --- for the wallet API ------------------------------------------------------------------------

# What a citizen calls each kind of ledger entry that touches their wallet.
HISTORY_KINDS = {
    "top_up": "voucher_topup",
    "payment": "voucher_payment",
    "refund": "voucher_refund",
    "transfer_in": "voucher_transfer",
    "transfer_out": "voucher_transfer",
    "grant": "voucher_grant",
    "reward": "voucher_reward",
    "redemption": "voucher_redeem",
    "expiry": "voucher_expiry",
}
_ENTRY_KIND_NAMES = {entry_kind: name for name, entry_kind in HISTORY_KINDS.items() if not name.startswith("transfer")}


def history_kind(entry: JournalEntry) -> str:
    """The citizen's name for an entry of wallet_history (which annotates `net`)."""
    if entry.kind == "voucher_transfer":
        return "transfer_out" if entry.net < 0 else "transfer_in"
    return _ENTRY_KIND_NAMES.get(entry.kind, entry.kind)


def wallet_history(
    wallet: Wallet, *, kind: str | None = None, since: date | None = None, until: date | None = None
) -> QuerySet[JournalEntry]:
    """Ledger entries that changed the wallet, newest first, each annotated with
    `net` (the change of the wallet's balance, won) and with the payment,
    top-up, refund, transfer and benefit rows it made already fetched. `since`
    and `until` are Seoul days, both included; `kind` is a HISTORY_KINDS key."""
    lot_postings = Posting.objects.filter(account__lot__wallet=wallet)
    net = lot_postings.filter(entry=OuterRef("pk")).values("entry").annotate(net=Sum("amount")).values("net")
    # A refund to lots that have all expired goes to their funder: it touches no lot, yet is the citizen's.
    entries = JournalEntry.objects.filter(
        Q(pk__in=lot_postings.values("entry_id")) | Q(refund__payment__wallet=wallet)
    ).annotate(net=Subquery(net))
    if kind is not None:
        entries = entries.filter(kind=HISTORY_KINDS[kind])
        if kind == "transfer_in":
            entries = entries.filter(net__gt=0)
        elif kind == "transfer_out":
            entries = entries.filter(net__lt=0)
    if since is not None:
        entries = entries.filter(created_at__gte=day_bounds(since)[0])
    if until is not None:
        entries = entries.filter(created_at__lt=day_bounds(until)[1])
    return (
        entries.select_related("payment__merchant", "topup", "refund__payment__merchant", "transfer", "redemption")
        .prefetch_related(
            Prefetch(
                "benefits", queryset=Benefit.objects.filter(wallet=wallet).select_related("program").order_by("pk")
            )
        )
        .order_by("-pk")
    )


def programs_for_wallet(wallet: Wallet, day: date | None = None) -> QuerySet[VoucherProgram]:
    """Active programs the wallet can use: bonus programs (they apply by
    themselves) and programs whose unexpired lots it holds, with `my_balance`."""
    day = day or seoul_today()
    live = Q(lots__wallet=wallet, lots__status=Lot.Status.ACTIVE, lots__expires_on__gte=day)
    return (
        VoucherProgram.objects.filter(status=VoucherProgram.Status.ACTIVE)
        .annotate(my_balance=Sum("lots__account__balance", filter=live, default=0))
        .filter(Q(kind__in=VoucherProgram.BONUS_KINDS) | Q(my_balance__gt=0))
        .order_by("pk")
    )


def wallet_benefits(wallet: Wallet, day: date | None = None) -> list[dict]:
    """benefits_this_month for every active program that gives the wallet
    something: the bonus programs, and any that issued to it."""
    day = day or seoul_today()
    issued = Benefit.objects.filter(wallet=wallet).values("program_id")
    programs = VoucherProgram.objects.filter(status=VoucherProgram.Status.ACTIVE).filter(
        Q(kind__in=VoucherProgram.BONUS_KINDS) | Q(pk__in=issued)
    )
    return [benefits_this_month(wallet, program, day) for program in programs.order_by("pk")]
