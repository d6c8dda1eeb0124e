"""Notarizing: an opaque digest and kind become a row that the next block seals.

The one writer of NotarizedDocument. It inserts into its own table only and
never touches an account or the chain row, so no payment ever waits on it.
"""

import re

from django.db import connection
from django.utils import timezone

from bank import errors
from bank.models import NotarizedDocument

# Dotted lowercase words: the app, then what it notarizes (coldchain.sensor_batch).
# No NUL, no byte above 0x7f: the kind goes into the leaf bytes as ASCII (bank.hashing).
DOCUMENT_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_KIND_LENGTH = 40
# An opaque id the caller resolves (a report's uid, an EPCIS event id): no spaces,
# which keeps names and free text out of a table that is kept forever.
DOCUMENT_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
MAX_REFERENCE_LENGTH = 64

_INSERT = (
    "INSERT INTO bank_notarizeddocument (digest, kind, reference, created_at) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (digest, kind) DO NOTHING"
)


def notarize(*, digest: bytes, kind: str, reference: str) -> NotarizedDocument:
    """Record `digest` (32 bytes) of `kind` for sealing. The same digest and kind
    again returns the first record, with its original time and reference.

    Concurrent calls race safely: the unique (digest, kind) index decides, the
    loser's INSERT does nothing and it reads the winner's committed row."""
    _check(digest=digest, kind=kind, reference=reference)
    digest = bytes(digest)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [digest, kind, reference, timezone.now()])
    return NotarizedDocument.objects.get(digest=digest, kind=kind)


def _check(*, digest, kind, reference) -> None:
    if not isinstance(digest, bytes | bytearray | memoryview) or len(digest) != 32:
        raise errors.InvalidDigest(kind=kind)
    if not isinstance(kind, str) or len(kind) > MAX_KIND_LENGTH or not DOCUMENT_KIND.fullmatch(kind):
        raise errors.InvalidDocumentKind(kind=kind)
    if (
        not isinstance(reference, str)
        or len(reference) > MAX_REFERENCE_LENGTH
        or not DOCUMENT_REFERENCE.fullmatch(reference)
    ):
        raise errors.InvalidDocumentReference(kind=kind)
