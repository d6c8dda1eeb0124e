"""Sealing: unsealed entries, in id order, become the next block of the chain,
signed by the consortium's validators.

Payments never wait on this: writers only insert entries; the sealer alone
locks the chain row. An entry that commits after a higher id was sealed is
simply picked up by the next block, so none is ever left out.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bank import bls
from bank.hashing import GENESIS_PREV_HASH, block_hash, merkle_root
from bank.models import Block, BlockAttestation, JournalEntry, LedgerChain
from bank.services.consortium import require_quorum


def seal_pending_entries(*, max_entries_per_block: int | None = None, max_blocks: int | None = None) -> list[Block]:
    """Seal everything committed so far into as many blocks as it takes. Safe to
    run on several workers at once: they take turns on the chain row."""
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
        if not pending:
            return None
        keys = require_quorum()
        previous = Block.objects.order_by("-height").only("height", "hash").first()
        header = {
            "height": previous.height + 1 if previous else 0,
            "prev_hash": previous.hash if previous else GENESIS_PREV_HASH,
            "merkle_root": merkle_root([bytes.fromhex(h) for _, h in pending]),
            "sealed_at": timezone.now(),
            "entry_count": len(pending),
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
        return block
