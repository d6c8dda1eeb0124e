"""Back-office views of the ledger and its controls. Read-only: money moves and
controls change only through bank.services, so the admin gets the same
maker-checker, role checks and audit rows as every other caller. Staff actions
ask for a reason on an intermediate page, and show a refusal with its code.

Django's autodiscovery imports this package; each module below registers its
pages (common holds the kit other apps' admins build on and registers nothing)."""

from bank.admin import (  # noqa: F401
    audit,
    controls,
    credentials,
    ledger,
    lockouts,  # login lockouts (issue 13)
    verification,  # verification runs and the latest attested block (issue 6)
)
