"""Read-only queries about wallet holds, for the wallet's API, the portal and
the pilot apps. Never writes; a module of its own until voucher.selectors
becomes a package (then it folds in there)."""

from django.db.models import QuerySet, Sum

from voucher.models import Merchant, Wallet, WalletHold


def held_on(wallet: Wallet) -> int:
    """What the wallet's open holds reserve: in its balance, but not spendable."""
    total = WalletHold.objects.filter(wallet=wallet, status=WalletHold.Status.OPEN).aggregate(total=Sum("amount"))
    return total["total"] or 0


def open_holds_of(wallet: Wallet) -> QuerySet[WalletHold]:
    """The wallet's open holds, soonest to expire first, with their merchant and lots fetched."""
    return (
        WalletHold.objects.filter(wallet=wallet, status=WalletHold.Status.OPEN)
        .select_related("merchant")
        .prefetch_related("lots")
        .order_by("expires_at", "pk")
    )


def open_holds_for(merchant: Merchant) -> QuerySet[WalletHold]:
    """The holds a merchant may still capture, soonest to expire first."""
    return (
        WalletHold.objects.filter(merchant=merchant, status=WalletHold.Status.OPEN)
        .select_related("wallet")
        .order_by("expires_at", "pk")
    )
