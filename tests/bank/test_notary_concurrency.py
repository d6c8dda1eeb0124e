"""Notarizing on PostgreSQL while payments post and two sealers race: every document and entry
ends in exactly one block, at its own leaf, and the ledger verifies."""

import hashlib
import time
from collections import Counter

import pytest

from bank import services
from bank.models import Block, JournalEntry, NotarizedDocument
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account
from tests.support.threads import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_notarizers_payers_and_two_sealers_racing_seal_every_leaf_exactly_once(validators):
    # given
    pairs = [(funded_account(1_000_000), AccountFactory()) for _ in range(2)]
    deadline = time.monotonic() + 1.5

    def work(index: int) -> int:
        rounds = 0
        while time.monotonic() < deadline:
            if index < 2:
                services.seal_pending_entries(max_entries_per_block=9)
            elif index < 4:
                payer, payee = pairs[index - 2]
                services.post_entry(lines=[(payer, -1), (payee, 1)], kind="transfer")
            else:
                # both notarizers walk the same digests, so every one is also a duplicate race
                digest = hashlib.sha256(str(rounds).encode()).digest()
                services.notarize(digest=digest, kind="coldchain.event", reference=f"n{index}-{rounds}")
            rounds += 1
        return rounds

    # when
    outcomes = race(6, work)
    services.seal_pending_entries()  # whatever committed after the sealers' last look
    # then
    errors = [error for status, error in outcomes if status == "error"]
    assert not errors, errors
    notarized = max(rounds for _, rounds in outcomes[4:])
    assert NotarizedDocument.objects.count() == notarized
    assert not NotarizedDocument.objects.filter(block__isnull=True).exists()
    assert not JournalEntry.objects.filter(block__isnull=True).exists()
    blocks = list(Block.objects.order_by("height"))
    assert sum(b.document_count for b in blocks) == notarized
    assert sum(b.entry_count for b in blocks) == JournalEntry.objects.count()
    places = Counter(NotarizedDocument.objects.values_list("block_id", "leaf_index"))
    assert max(places.values()) == 1
    for block in blocks:
        indexes = sorted(i for b, i in places if b == block.pk)
        assert indexes == list(range(block.entry_count, block.entry_count + block.document_count))
    report = verify_ledger()
    assert report.ok, report.failures
    assert (report.documents, report.unsealed_documents) == (notarized, 0)
