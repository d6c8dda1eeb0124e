"""Sealing: unsealed entries, then unsealed notarized documents, each in id
order, become the next block of the chain, signed by the consortium's validators.

Payments and notarizing never wait on this: writers only insert entries and
documents; the sealer alone locks the chain row. A row that commits after a
higher id was sealed is simply picked up by the next block, so none is ever
left out.
"""

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bank import bls
from bank.hashing import GENESIS_PREV_HASH, HEADER_VERSION, block_hash, block_leaf_hashes, root_of_leaves
from bank.models import Block, BlockAttestation, JournalEntry, LedgerChain, NotarizedDocument
from bank.services.consortium import require_quorum


def seal_pending_entries(*, max_entries_per_block: int | None = None, max_blocks: int | None = None) -> list[Block]:
    """Seal everything committed so far into as many blocks as it takes. Safe to
    run on several workers at once: they take turns on the chain row.
    `max_entries_per_block` bounds a block's leaves, entries first: documents
    fill what room entries leave, and a backlog of entries only delays them
    by the blocks it takes."""
    limit = max_entries_per_block or settings.LEDGER_MAX_ENTRIES_PER_BLOCK
    sealed = []
    while max_blocks is None or len(sealed) < max_blocks:
        block = _seal_one_block(limit)
        if block is None:
            break
        sealed.append(block)
    return sealed


def _seal_one_block(limit: int) -> Block | None:
    with transaction.atomic():
        chain, _ = LedgerChain.objects.get_or_create(name="main")
        LedgerChain.objects.select_for_update().get(pk=chain.pk)
        pending = list(JournalEntry.objects.filter(block__isnull=True).order_by("pk").values_list("pk", "hash")[:limit])
        documents = []
        if len(pending) < limit:
            documents = list(
                NotarizedDocument.objects.filter(block__isnull=True)
                .order_by("pk")
                .values_list("pk", "kind", "digest")[: limit - len(pending)]
            )
        if not pending and not documents:
            return None
        keys = require_quorum()
        previous = Block.objects.order_by("-height").only("height", "hash").first()
        leaves = block_leaf_hashes(
            HEADER_VERSION, [bytes.fromhex(h) for _, h in pending], [(kind, bytes(d)) for _, kind, d in documents]
        )
        header = {
            "version": HEADER_VERSION,
            "height": previous.height + 1 if previous else 0,
            "prev_hash": previous.hash if previous else GENESIS_PREV_HASH,
            "merkle_root": root_of_leaves(leaves),
            "sealed_at": timezone.now(),
            "entry_count": len(pending),
            "document_count": len(documents),
        }
        digest = block_hash(**header)
        message = bytes.fromhex(digest)
        signatures = [(validator_id, bls.sign(secret, message)) for validator_id, secret in keys]
        block = Block.objects.create(
            **header, hash=digest, aggregate_signature=bls.aggregate([s for _, s in signatures]).hex()
        )
        BlockAttestation.objects.bulk_create(
            BlockAttestation(block=block, validator_id=validator_id, signature=signature.hex())
            for validator_id, signature in signatures
        )
        JournalEntry.objects.filter(pk__in=[pk for pk, _ in pending]).update(block=block)
        _seal_documents(block, [pk for pk, _, _ in documents], first_leaf=len(pending))
        return block


def _seal_documents(block: Block, document_ids: list[int], *, first_leaf: int) -> None:
    """Each document gets the block and its leaf's position (entries come first)."""
    if not document_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                # WITH ORDINALITY counts from 1.
                "UPDATE bank_notarizeddocument d SET block_id = %s, leaf_index = v.position - 1 + %s "
                "FROM unnest(%s::bigint[]) WITH ORDINALITY AS v(id, position) WHERE d.id = v.id",
                [block.pk, first_leaf, document_ids],
            )
        return
    for offset, pk in enumerate(document_ids):
        NotarizedDocument.objects.filter(pk=pk).update(block=block, leaf_index=first_leaf + offset)
