"""The token's invariant for verify_ledger: every BKRW in circulation is backed
by one won in the reserve. Read-only; registered in VoucherConfig.ready()."""

from django.db.models import Sum

from bank.models import Account
from bank.verification import Failure
from voucher.rules.accounts import ISSUANCE_CODE, RESERVE_CODE

CHECK_NAME = "reserve_identity"


def reserve_position() -> tuple[int, int]:
    """(BKRW outstanding, reserve KRW): every BKRW balance but the issuance
    account's, and the reserve's natural balance. Two queries, on the cached
    balances, which verify_ledger proves against the postings separately."""
    outstanding = (
        Account.objects.filter(currency="BKRW").exclude(code=ISSUANCE_CODE).aggregate(total=Sum("balance"))["total"]
        or 0
    )
    reserve = Account.objects.filter(code=RESERVE_CODE).first()
    return outstanding, reserve.natural_balance if reserve else 0


def check_reserve_identity() -> list[Failure]:
    """BKRW outstanding must equal the reserve's KRW, to the won."""
    outstanding, reserve_krw = reserve_position()
    if outstanding == reserve_krw:
        return []
    return [
        Failure(
            CHECK_NAME,
            RESERVE_CODE,
            f"reserve identity broken: BKRW outstanding {outstanding:,} but reserve holds {reserve_krw:,} KRW "
            f"(difference {outstanding - reserve_krw:+,})",
        )
    ]
