"""Back-office pages of the token. Records of money movements are read-only;
programs, merchants and freezes change only through voucher.services, so the
admin gets the same maker-checker, checks and audit rows as every other caller.

Django's autodiscovery imports this package; each module below registers its
pages (devices holds the device-key pages the wallet and merchant pages share)."""

from voucher.admin import (  # noqa: F401
    holders,
    limits,
    oversight,  # reconciliation, customer view, fraud flags (issue 6)
    programs,
    records,
    settlement,
)
