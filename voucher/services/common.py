"""Helpers every voucher service shares: input checks, the lock order, the
token's own ledger accounts, and building mint and burn lines.

Lock order, the same in every service so two of them never wait on each
other in a cycle: PaymentRequest row -> Payment row -> Wallet rows -> Merchant row -> VoucherProgram
rows -> Lot rows (each kind by primary key) -> ledger accounts, all in one
bank lock_accounts call (by account id). An account created in the same
transaction may join later: no one else can see it, so it never waits.

Settlement relies on one more rule: a Payment, Refund or MerchantPayment row is
inserted only after the merchant's token account is locked, so under that lock
the merchant's rows are exactly those with ids above its last settled range
(voucher.services.settlement). voucher.services.merchant_lock checks it: lock
ledger accounts with its lock_ledger_accounts, and call require_merchant_locked
before inserting such a row.

A row we insert also takes a share lock on every account its foreign keys
name (PostgreSQL's FK check), so a new lot's funder account is locked with
the others first; otherwise that share lock would be taken out of order.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet

from bank import errors as bank_errors
from bank.models import MAX_AMOUNT, Account, Party
from bank.services import open_account, open_party
from voucher import errors
from voucher.models import Lot, Merchant, VoucherProgram, Wallet
from voucher.rules.accounts import BANK_PARTY_REF, ISSUANCE_CODE, RESERVE_CODE

MAX_KEY_LENGTH = 64  # our keys are namespaced into the ledger's 100-character idempotency key


def check_amount(amount, field: str = "amount") -> int:
    # bool is an int in Python, and a float or Decimal is never money here.
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise bank_errors.InvalidAmount(field=field, amount=repr(amount), max_amount=MAX_AMOUNT)
    return amount


def check_key(key, field: str = "idempotency_key") -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise errors.InvalidRequest(f"{field} must be text of 1 to {MAX_KEY_LENGTH} characters.", field=field)
    return key


def ledger_key(*parts) -> str:
    """The ledger's idempotency keys are global; ours are unique per wallet or
    program, so the owner's id goes into the ledger key."""
    return "voucher:" + ":".join(str(part) for part in parts)


def check_acting_user(user) -> None:
    """An `acting_user` is a saved Django user (not AnonymousUser), or None for a system caller."""
    if user is not None and (not isinstance(user, AbstractBaseUser) or user.pk is None):
        raise errors.InvalidRequest("acting_user must be a user or None.", field="acting_user")


def require_staff(actor) -> None:
    if actor is None or not getattr(actor, "is_staff", False) or not getattr(actor, "is_active", False):
        raise errors.StaffOnly()


@dataclass(frozen=True)
class TokenAccounts:
    reserve: Account  # KRW, credit-normal: the bank holds the KRW backing every token
    issuance: Account  # BKRW, debit-normal and may go negative: minus the tokens outstanding


def token_accounts() -> TokenAccounts:
    """The reserve and the issuance control account, opened on first use."""
    found = {a.code: a for a in Account.objects.filter(code__in=[RESERVE_CODE, ISSUANCE_CODE])}
    if len(found) < 2:
        bank = open_party(kind=Party.Kind.BANK, external_ref=BANK_PARTY_REF, display_name="Busan Bank")
        found[RESERVE_CODE] = open_account(
            owner=bank, code=RESERVE_CODE, currency="KRW", normal_side=Account.NormalSide.LIABILITY
        )
        found[ISSUANCE_CODE] = open_account(
            owner=bank,
            code=ISSUANCE_CODE,
            currency="BKRW",
            normal_side=Account.NormalSide.ASSET,
            may_go_negative=True,
        )
    return TokenAccounts(reserve=found[RESERVE_CODE], issuance=found[ISSUANCE_CODE])


class Lines:
    """The postings of one entry being built, credit positive.

    Debits and credits of one account stay separate postings (a lot spent and
    refilled with cashback in the same payment shows both), so what a payment
    took from each lot can be read back from the entry's negative postings.
    """

    def __init__(self):
        self._amounts: dict[tuple[int, bool], int] = {}

    def add(self, account: Account | int, amount: int) -> None:
        account_id = account.pk if isinstance(account, Account) else account
        key = (account_id, amount > 0)
        self._amounts[key] = self._amounts.get(key, 0) + amount

    def mint(self, *, tokens: TokenAccounts, krw_from: Account | int, to: Account | int, amount: int) -> None:
        """KRW from a credit-normal account into the reserve, the same BKRW created into `to`."""
        self.add(krw_from, -amount)
        self.add(tokens.reserve, amount)
        self.add(tokens.issuance, -amount)
        self.add(to, amount)

    def burn(self, *, tokens: TokenAccounts, tokens_from: Account | int, krw_to: Account | int, amount: int) -> None:
        """BKRW out of `tokens_from` destroyed, the same KRW paid out of the reserve to `krw_to`."""
        self.add(tokens_from, -amount)
        self.add(tokens.issuance, amount)
        self.add(tokens.reserve, -amount)
        self.add(krw_to, amount)

    def as_list(self) -> list[tuple[int, int]]:
        return [(account_id, amount) for (account_id, _), amount in self._amounts.items() if amount]


# --- locks, in the module docstring's order ------------------------------------------------------


def _locked(queryset: QuerySet, ids: Iterable[int]) -> list:
    # FOR NO KEY UPDATE: these rows' keys never change, and the weaker lock lets
    # other transactions insert rows that point at them (a Payment at a merchant
    # whose row another payment holds) without joining a lock cycle.
    return list(queryset.select_for_update(of=("self",), no_key=True).filter(pk__in=sorted(set(ids))).order_by("pk"))


def lock_wallets(*wallets: Wallet) -> dict[int, Wallet]:
    locked = {
        w.pk: w for w in _locked(Wallet.objects.select_related("owner", "deposit_account"), [w.pk for w in wallets])
    }
    if len(locked) != len({w.pk for w in wallets}):
        raise errors.InvalidRequest("No such wallet.", field="wallet")
    return locked


def lock_merchant(merchant: Merchant) -> Merchant:
    [locked] = _locked(Merchant.objects.all(), [merchant.pk])
    return locked


def lock_programs(ids: Iterable[int]) -> list[VoucherProgram]:
    return _locked(VoucherProgram.objects.select_related("funder_account"), ids)


def lock_lots(ids: Iterable[int]) -> dict[int, Lot]:
    return {lot.pk: lot for lot in _locked(Lot.objects.select_related("program"), ids)}


def check_wallet_active(wallet: Wallet) -> None:
    if wallet.status != Wallet.Status.ACTIVE:
        raise errors.WalletFrozen(wallet=wallet.pk)


def check_merchant_active(merchant: Merchant) -> None:
    if merchant.status != Merchant.Status.ACTIVE:
        raise errors.MerchantFrozen(merchant=merchant.pk)
