"""The posting service: the only code that writes postings and account balances.

Every entry is checked whole before anything is written: amounts are non-zero
ints, accounts exist and are active, each currency sums to zero, no guarded
account's available balance (posted less holds) drops below zero. Accounts
are locked in id order, so two transfers can never wait on each other in a
cycle (no deadlocks), and a retried idempotency key returns the first entry.

Where things are: `rules` (what an entry must pass; no database), `locks` (the
lock order, the lookup of earlier keys, deferred_balances), `entries` (an
entry's columns, listed once, and building one), `writers` (the ORM, one
PostgreSQL statement, binary COPY), and `service`, which runs them in order.
A rule can be changed without reading the writers.
"""

from bank.services.posting.locks import DeferredBalances, deferred_balances, lock_account_rows, lock_accounts
from bank.services.posting.rules import MAX_LINES, CheckedRequest, EntryRequest, check_request
from bank.services.posting.service import (
    apply_locked,
    post_entries,
    post_entry,
    post_locked,
    reverse_entry,
)

__all__ = [
    "MAX_LINES",
    "CheckedRequest",
    "DeferredBalances",
    "EntryRequest",
    "apply_locked",
    "check_request",
    "deferred_balances",
    "lock_account_rows",
    "lock_accounts",
    "post_entries",
    "post_entry",
    "post_locked",
    "reverse_entry",
]
