"""Re-derive the whole ledger from its rows and say where it stops checking out.

Read-only. Entries and postings are streamed in one pass (PostgreSQL COPY, or
a chunked cursor elsewhere), so memory stays flat as the ledger grows and
there is never one query per entry. Other apps add their own invariants
(the token's reserve identity) with register_check.
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from django.conf import settings
from django.db import connection, connections

from bank import bls
from bank.hashing import (
    ENTRY_TAG,
    GENESIS_PREV_HASH,
    RootBuilder,
    block_hash,
    compact_json_text,
    document_leaf_hash,
    entry_bytes,
    entry_leaf_hash,
    epoch_micros,
)
from bank.models import Account, Block, BlockAttestation, JournalEntry, NotarizedDocument


@dataclass(frozen=True)
class Failure:
    kind: str  # "entry", "block", "account" or a registered check's name
    ident: str
    message: str

    def __str__(self):
        return f"{self.kind} {self.ident}: {self.message}"


@dataclass
class Report:
    entries: int = 0
    blocks: int = 0
    accounts: int = 0
    unsealed: int = 0
    documents: int = 0
    unsealed_documents: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> Failure | None:
        return self.failures[0] if self.failures else None


Check = Callable[[], list[Failure]]
_extra_checks: dict[str, Check] = {}


def register_check(name: str, check: Check) -> None:
    """Add an invariant verify_ledger also proves (called from an AppConfig.ready)."""
    _extra_checks[name] = check


Progress = Callable[[int, int], None]


def verify_ledger(*, progress: Progress | None = None, max_failures: int = 20) -> Report:
    """Check every entry hash, Merkle root (over entries and notarized documents),
    header count, block link, block signature, balance and registered invariant. Failures come in ledger order, so the first one
    names the earliest entry or block that does not check out."""
    report = Report()
    total = JournalEntry.objects.count()
    blocks = list(
        Block.objects.order_by("height").values(
            "pk",
            "version",
            "height",
            "prev_hash",
            "merkle_root",
            "sealed_at",
            "entry_count",
            "document_count",
            "hash",
            "aggregate_signature",
        )
    )
    report.blocks = len(blocks)
    signers = _attestations_by_block()

    def fail(kind, ident, message):
        if len(report.failures) < max_failures:
            report.failures.append(Failure(kind, str(ident), message))

    _check_chain(blocks, signers, fail)
    by_pk = {b["pk"]: b for b in blocks}
    # A block's root is built as its leaves stream past: its entries now, its
    # documents after the entries' COPY ends (a version 2 block's leaves are
    # its entries, then its documents). Each open tree holds O(log n) hashes.
    trees: dict[int, RootBuilder] = {}
    done = 0
    current_block, tree = None, None
    server_built = connection.vendor == "postgresql"
    sha256 = hashlib.sha256
    rebuilt = _Rebuilt()
    try:
        for entry_id, block_id, stored_hash, canonical, sums in _entries():
            if block_id != current_block:
                current_block = block_id
                if block_id is not None:
                    tree = trees[block_id] = RootBuilder()
                    version = by_pk[block_id]["version"]
            if sha256(canonical).hexdigest() != stored_hash and not (
                server_built and sha256(rebuilt.canonical(entry_id)).hexdigest() == stored_hash
            ):
                fail("entry", f"#{entry_id}", "hash does not match its contents (entry or postings changed)")
            if sums is not None:  # None: the server saw one currency summing to zero
                unbalanced = {c: s for c, s in sums.items() if s}
                if unbalanced or not sums:
                    fail("entry", f"#{entry_id}", f"postings do not sum to zero: {unbalanced or 'no postings'}")
            if block_id is None:
                report.unsealed += 1
            else:
                try:
                    tree.add(entry_leaf_hash(version, bytes.fromhex(stored_hash)))
                except ValueError:  # not 64 hex digits: reported above, and the root cannot match
                    tree.add(b"")
            done += 1
            if progress and done % 10_000 == 0:
                progress(done, total)
    finally:
        rebuilt.close()
    documents_in = _add_documents(trees, by_pk, report, fail)
    for block in blocks:
        _check_block_contents(block, trees.get(block["pk"]), documents_in.get(block["pk"], 0), fail)
    report.entries = done
    if progress:
        progress(done, total)

    report.accounts = _check_balances(fail)
    for name, check in _extra_checks.items():
        for failure in check():
            fail(failure.kind or name, failure.ident, failure.message)
    return report


def _attestations_by_block() -> dict[int, list[tuple[str, str]]]:
    signers: dict[int, list[tuple[str, str]]] = {}
    rows = BlockAttestation.objects.order_by("block_id", "validator_id").values_list(
        "block_id", "validator__public_key", "signature"
    )
    for block_id, public_key, signature in rows.iterator(chunk_size=5000):
        signers.setdefault(block_id, []).append((public_key, signature))
    return signers


def _check_chain(blocks, signers, fail) -> None:
    quorum = settings.LEDGER_BLOCK_QUORUM
    prev_hash = GENESIS_PREV_HASH
    for expected_height, block in enumerate(blocks):
        height = block["height"]
        if height != expected_height:
            fail("block", height, f"height breaks the sequence (expected {expected_height})")
        if block["prev_hash"] != prev_hash:
            fail("block", height, "does not link to the previous block's hash")
        try:
            digest = block_hash(
                version=block["version"],
                document_count=block["document_count"],
                height=height,
                prev_hash=block["prev_hash"],
                merkle_root=block["merkle_root"],
                sealed_at=block["sealed_at"],
                entry_count=block["entry_count"],
            )
        except ValueError:
            fail("block", height, f"has no header of version {block['version']} with its counts")
            prev_hash = block["hash"]
            continue
        if digest != block["hash"]:
            fail("block", height, "header hash does not match its header")
        attesters = signers.get(block["pk"], [])
        if len(attesters) < quorum:
            fail("block", height, f"has {len(attesters)} attestations, fewer than the quorum of {quorum}")
        publics = [bytes.fromhex(p) for p, _ in attesters]
        aggregate = bytes.fromhex(block["aggregate_signature"])
        if not bls.verify_aggregate(publics, bytes.fromhex(digest), aggregate):
            fail("block", height, "aggregate signature does not verify")
        elif attesters and bls.aggregate([bytes.fromhex(s) for _, s in attesters]) != aggregate:
            fail("block", height, "stored attestations do not add up to the aggregate signature")
        prev_hash = block["hash"]


def _add_documents(trees, by_pk, report, fail) -> dict[int, int]:
    """Add every sealed document's leaf to its block's tree, by block then id;
    count them into the report and return how many each block holds."""
    rows = NotarizedDocument.objects.order_by("block_id", "pk").values_list("pk", "block_id", "kind", "digest")
    documents_in: dict[int, int] = {}
    for document_id, block_id, kind, digest in rows.iterator(chunk_size=5000):
        report.documents += 1
        if block_id is None:
            report.unsealed_documents += 1
            continue
        block = by_pk[block_id]
        if block["version"] < 2:
            fail("document", f"#{document_id}", f"is in block {block['height']}, whose header version holds none")
            continue
        try:
            leaf = document_leaf_hash(kind, bytes(digest))
        except (ValueError, UnicodeEncodeError):
            fail("document", f"#{document_id}", "has a malformed kind or digest")
            continue
        trees.setdefault(block_id, RootBuilder()).add(leaf)
        documents_in[block_id] = documents_in.get(block_id, 0) + 1
    return documents_in


def _check_block_contents(block, tree, documents: int, fail) -> None:
    height = block["height"]
    if tree is None:
        fail("block", height, "holds no entries" if block["version"] == 1 else "holds no entries or documents")
        return
    entries = tree.count - documents
    if entries != block["entry_count"]:
        fail("block", height, f"holds {entries} entries, header says {block['entry_count']}")
    if documents != block["document_count"]:
        fail("block", height, f"holds {documents} documents, header says {block['document_count']}")
    if tree.root() != block["merkle_root"]:
        what = "its entries" if block["version"] == 1 else "its entries and documents"
        fail("block", height, f"Merkle root does not match {what}")


def _check_balances(fail) -> int:
    """Cached balances against their postings, cached holds against open holds, in SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.code, a.balance, COALESCE(p.total, 0), a.on_hold, COALESCE(h.total, 0)
            FROM bank_account a
            LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM bank_posting GROUP BY account_id) p
                   ON p.account_id = a.id
            LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM bank_hold WHERE status = 'open'
                       GROUP BY account_id) h
                   ON h.account_id = a.id
            WHERE a.balance <> COALESCE(p.total, 0) OR a.on_hold <> COALESCE(h.total, 0)
            ORDER BY a.id
            """
        )
        for account_id, code, balance, posted, on_hold, held in cursor.fetchall():
            if balance != posted:
                fail("account", f"{code} (#{account_id})", f"balance {balance} but its postings sum to {posted}")
            if on_hold != held:
                fail("account", f"{code} (#{account_id})", f"{on_hold} on hold but its open holds sum to {held}")
        cursor.execute(
            "SELECT p.entry_id, a.code FROM bank_posting p JOIN bank_account a ON a.id = p.account_id "
            "WHERE p.currency <> a.currency ORDER BY p.entry_id"
        )
        for entry_id, code in cursor.fetchall():
            fail("entry", f"#{entry_id}", f"posts in another currency than account {code}")
    return Account.objects.count()


# --- streaming the entries ------------------------------------------------------------------
#
# On PostgreSQL the server builds each entry's canonical bytes (bank.hashing's
# compact JSON; to_json escapes text exactly as Python's json module does) and
# streams one binary COPY row per entry, so Python only hashes: the server's
# nested loop and Python's hashing then run side by side on two cores. The
# server's bytes are a fast path, never the judge: an entry whose bytes do not
# hash to its stored hash is built again from its rows with bank.hashing
# before it is reported. Elsewhere (SQLite) rows are read in chunks and the
# bytes built in Python.

_MICROS = "(EXTRACT(EPOCH FROM e.created_at) * 1000000)::bigint"
_JSON_TAG = compact_json_text(ENTRY_TAG)
if "'" in _JSON_TAG:
    raise ValueError("ENTRY_TAG must not contain a quote: it is spliced into SQL")
_CANONICAL_COPY = f"""
COPY (
    SELECT e.id, e.block_id, e.hash,
           convert_to(
               '[{_JSON_TAG},"' || e.uid::text || '",' || {_MICROS} || ','  -- a uuid's text needs no escaping
               || to_json(e.kind)::text || ',' || to_json(e.memo)::text || ',' || to_json(e.reference)::text || ','
               || coalesce(e.reverses_id::text, 'null') || ',' || coalesce(p.postings, '[]') || ']',
               'UTF8'),
           p.balanced
    FROM bank_journalentry e
    LEFT JOIN LATERAL (
        SELECT '[' || string_agg(
                   '[' || account_id || ',' || to_json(currency)::text || ',' || amount || ']', ','
                   ORDER BY account_id, currency COLLATE "C", amount) || ']' AS postings,
               min(currency) = max(currency) AND sum(amount) = 0 AS balanced
        FROM bank_posting WHERE entry_id = e.id
    ) p ON true
    {{where}}
) TO STDOUT (FORMAT binary)
"""
_SEALED = "WHERE e.block_id IS NOT NULL ORDER BY e.block_id, e.id"
_UNSEALED = "WHERE e.block_id IS NULL ORDER BY e.id"


def _entries() -> Iterator[tuple[int, int | None, str, bytes, dict[str, int] | None]]:
    """Yield (entry id, block id, stored hash, canonical bytes, per-currency sums,
    or None when the server found them all zero in one currency): sealed
    entries by block then id, then the unsealed ones by id."""
    if connection.vendor == "postgresql":
        for where in (_SEALED, _UNSEALED):
            yield from _entries_postgresql(where)
    else:
        for where in (_ORDER_SEALED, _ORDER_UNSEALED):
            yield from _group_entries(_rows_generic(where))


def _entries_postgresql(where: str):
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        # Just-in-time compilation costs more than it saves on this per-row plan.
        cursor.execute("SET jit = off")
        try:
            with cursor.copy(_CANONICAL_COPY.format(where=where)) as copy:
                copy.set_types(["int8", "int8", "text", "bytea", "bool"])
                for entry_id, block_id, stored_hash, canonical, balanced in copy.rows():
                    sums = None if balanced else _sums(canonical)
                    yield entry_id, block_id, stored_hash, canonical, sums
        finally:
            # After an error the transaction rolls back, and the SET with it.
            if cursor.connection.info.transaction_status != psycopg.pq.TransactionStatus.INERROR:
                cursor.execute("RESET jit")


def _sums(canonical: bytes) -> dict[str, int]:
    """Per-currency sums of the postings inside an entry's canonical bytes (the rare
    entry the server did not find balanced in one currency)."""
    sums: dict[str, int] = {}
    for _, currency, amount in json.loads(canonical)[-1]:
        sums[currency] = sums.get(currency, 0) + amount
    return sums


class _Rebuilt:
    """An entry's canonical bytes built by bank.hashing from its rows, read on a
    second connection (the first is busy streaming), opened on first use."""

    def __init__(self):
        self._connection = None

    def canonical(self, entry_id: int) -> bytes:
        if self._connection is None:
            self._connection = connections.create_connection(connection.alias)
        with self._connection.cursor() as cursor:
            cursor.execute(
                "SELECT uid, created_at, kind, memo, reference, reverses_id FROM bank_journalentry WHERE id = %s",
                [entry_id],
            )
            row = cursor.fetchone()
            if row is None:
                return b""
            cursor.execute("SELECT account_id, currency, amount FROM bank_posting WHERE entry_id = %s", [entry_id])
            postings = [tuple(posting) for posting in cursor.fetchall()]
        uid, created_at, kind, memo, reference, reverses_id = row
        return entry_bytes(
            uid=str(uid),
            created_at_us=epoch_micros(created_at),
            kind=kind,
            memo=memo,
            reference=reference,
            reverses_id=reverses_id,
            postings=postings,
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


_COLUMNS = "e.id, e.block_id, e.hash, {uid}, {created}, e.kind, e.memo, e.reference, e.reverses_id, p.account_id, p.currency, p.amount"
_FROM = " FROM bank_journalentry e LEFT JOIN bank_posting p ON p.entry_id = e.id "
_ORDER_SEALED = " WHERE e.block_id IS NOT NULL ORDER BY e.block_id, e.id, p.id"
_ORDER_UNSEALED = " WHERE e.block_id IS NULL ORDER BY e.id, p.id"


def _group_entries(rows):
    current = None
    postings: list[list] = []
    sums: dict[str, int] = {}
    for row in rows:
        if current is None or row[0] != current[0]:
            if current is not None:
                yield _finish(current, postings, sums)
            current, postings, sums = row, [], {}
        if row[9] is not None:
            postings.append([row[9], row[10], row[11]])
            sums[row[10]] = sums.get(row[10], 0) + row[11]
    if current is not None:
        yield _finish(current, postings, sums)


def _finish(row, postings, sums):
    entry_id, block_id, stored_hash, uid, created_us, kind, memo, reference, reverses_id = row[:9]
    postings.sort()
    # The same bytes as bank.hashing.entry_bytes, built inline: this loop runs once per entry.
    canonical = compact_json_text([ENTRY_TAG, uid, created_us, kind, memo, reference, reverses_id, postings]).encode()
    return entry_id, block_id, stored_hash, canonical, sums


def _rows_generic(where: str):
    sql = "SELECT " + _COLUMNS.format(uid="e.uid", created="e.created_at") + _FROM + where
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql)
        while chunk := cursor.fetchmany(5000):
            for row in chunk:
                row = list(row)
                row[3] = str(uuid.UUID(str(row[3])))
                created = row[4]
                if isinstance(created, str):
                    created = datetime.fromisoformat(created)
                if created.tzinfo is None:
                    created = created.replace(tzinfo=UTC)
                row[4] = epoch_micros(created)
                yield row
