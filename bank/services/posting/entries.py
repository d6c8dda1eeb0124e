"""A new journal entry as every writer writes it: its columns and their
PostgreSQL types, listed once here for the INSERT statements and the COPY, and
building the entry (uid, time, hash) from a checked request."""

import uuid
from operator import attrgetter
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from bank.hashing import entry_hash, epoch_micros
from bank.models import JournalEntry

if TYPE_CHECKING:
    from bank.services.posting.rules import CheckedRequest

# What a write sends of a new entry, in this order; the id comes from the
# table's sequence and the block from sealing, later.
ENTRY_COLUMNS = (
    ("uid", "uuid"),
    ("kind", "text"),
    ("memo", "text"),
    ("reference", "text"),
    ("idempotency_key", "text"),
    ("request_hash", "text"),
    ("reverses_id", "bigint"),
    ("created_at", "timestamptz"),
    ("hash", "text"),
)
ENTRY_NAMES = ", ".join(name for name, _ in ENTRY_COLUMNS)
ENTRY_TYPES = [pg_type for _, pg_type in ENTRY_COLUMNS]
# An entry's ENTRY_COLUMNS values, in their order: what every write sends.
entry_values = attrgetter(*(name for name, _ in ENTRY_COLUMNS))

# A posting's columns as the writers send them: the entry's id, then each line's.
POSTING_NAMES = "entry_id, account_id, currency, amount"
POSTING_TYPES = ["bigint", "bigint", "text", "bigint"]

# JournalEntry's fields in the order Model.__init__ takes them positionally,
# which skips the per-field keyword matching (a batch builds thousands).
_ENTRY_FIELD_ORDER = ("id", *(name for name, _ in ENTRY_COLUMNS), "block_id")
if tuple(f.attname for f in JournalEntry._meta.concrete_fields) != _ENTRY_FIELD_ORDER:
    raise ImproperlyConfigured("JournalEntry's fields changed: update ENTRY_COLUMNS and build_entry.")


def build_entry(checked: "CheckedRequest", accounts: dict) -> JournalEntry:
    """The unsaved entry of a checked request, hashed over its postings in the locked accounts' currencies."""
    request = checked.request
    uid = uuid.uuid4()
    created_at = timezone.now()
    reverses_id = request.reverses.pk if request.reverses else None
    digest = entry_hash(
        uid=str(uid),
        created_at_us=epoch_micros(created_at),
        kind=request.kind,
        memo=request.memo,
        reference=request.reference,
        reverses_id=reverses_id,
        postings=[(a, accounts[a].currency, n) for a, n in checked.lines],
    )
    return JournalEntry(
        None,
        uid,
        request.kind,
        request.memo,
        request.reference,
        request.idempotency_key,
        checked.request_hash,
        reverses_id,
        created_at,
        digest,
        None,
    )
