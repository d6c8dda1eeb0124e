"""Sealing entries into BLS-attested blocks, and Merkle inclusion proofs a third party can check."""

import copy
import io
import json
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from bank import bls, services
from bank.errors import BankError
from bank.hashing import (
    GENESIS_PREV_HASH,
    block_hash,
    block_leaf_hashes,
    header_from_proof,
    merkle_path,
    merkle_root,
    root_from_path,
    root_of_leaves,
)
from bank.models import Block, BlockAttestation, JournalEntry
from bank.proofs import build_inclusion_proof, check_inclusion_proof
from bank.services.consortium import signing_keys
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account
from tests.support.proofs import post_transfers, trusted_keys


def entry_ids_of(block: Block) -> list[int]:
    return list(JournalEntry.objects.filter(block=block).order_by("pk").values_list("pk", flat=True))


# --- sealing --------------------------------------------------------------------------------


def test_sealing_puts_every_pending_entry_in_id_order_into_one_signed_block(validators):
    # given
    post_transfers(3)
    pending = list(JournalEntry.objects.order_by("pk").values_list("pk", "hash"))
    # when
    [block] = services.seal_pending_entries()
    # then
    assert (block.height, block.prev_hash, block.entry_count) == (0, GENESIS_PREV_HASH, len(pending))
    assert entry_ids_of(block) == [pk for pk, _ in pending]
    assert block.version == 2
    assert block.merkle_root == root_of_leaves(block_leaf_hashes(2, [bytes.fromhex(h) for _, h in pending]))
    assert block.hash == block_hash(
        version=2,
        height=0,
        prev_hash=GENESIS_PREV_HASH,
        merkle_root=block.merkle_root,
        sealed_at=block.sealed_at,
        entry_count=len(pending),
    )
    publics = [bytes.fromhex(v.public_key) for v in validators]
    assert BlockAttestation.objects.filter(block=block).count() == len(validators)
    assert bls.verify_aggregate(publics, bytes.fromhex(block.hash), bytes.fromhex(block.aggregate_signature))
    assert not JournalEntry.objects.filter(block__isnull=True).exists()


def test_an_entry_posted_after_sealing_goes_into_the_next_block_linked_to_the_last(validators):
    # given
    post_transfers(2)
    [first] = services.seal_pending_entries()
    sealed_before = set(entry_ids_of(first))
    # when
    [late] = post_transfers(1)
    [second] = services.seal_pending_entries()
    # then
    assert (second.height, second.prev_hash) == (1, first.hash)
    assert late.pk in entry_ids_of(second)
    assert sealed_before.isdisjoint(entry_ids_of(second))
    assert set(entry_ids_of(first)) == sealed_before
    assert verify_ledger().ok


def test_sealing_with_nothing_pending_makes_no_block(validators):
    # given
    post_transfers(1)
    services.seal_pending_entries()
    # when
    sealed = services.seal_pending_entries()
    # then
    assert sealed == []
    assert Block.objects.count() == 1


def test_max_entries_per_block_splits_the_pending_entries_into_linked_blocks(validators):
    # given: 5 transfers and their funding entry
    post_transfers(5)
    pending = list(JournalEntry.objects.order_by("pk").values_list("pk", flat=True))
    # when
    blocks = services.seal_pending_entries(max_entries_per_block=2)
    # then
    assert [b.height for b in blocks] == [0, 1, 2]
    assert [b.entry_count for b in blocks] == [2, 2, 2]
    assert [pk for b in blocks for pk in entry_ids_of(b)] == pending
    assert [b.prev_hash for b in blocks] == [GENESIS_PREV_HASH, blocks[0].hash, blocks[1].hash]
    assert verify_ledger().ok


def test_max_blocks_leaves_the_rest_for_the_next_run(validators):
    # given
    post_transfers(4)
    # when
    first_run = services.seal_pending_entries(max_entries_per_block=2, max_blocks=1)
    # then
    assert len(first_run) == 1
    assert JournalEntry.objects.filter(block__isnull=True).count() == 3
    assert [b.height for b in services.seal_pending_entries(max_entries_per_block=2)] == [1, 2]


def test_sealing_without_a_quorum_of_validator_keys_is_refused_and_seals_nothing(validators, settings, tmp_path):
    # given: the validators are registered but this node holds none of their key files
    post_transfers(1)
    settings.LEDGER_VALIDATOR_KEY_DIR = tmp_path
    signing_keys.cache_clear()
    # when / then
    with pytest.raises(BankError) as refused:
        services.seal_pending_entries()
    assert refused.value.code == "validator_key_missing"
    assert Block.objects.count() == 0
    assert not JournalEntry.objects.filter(block__isnull=False).exists()


def test_sealing_with_exactly_a_quorum_of_keys_is_attested_by_those_validators(validators, settings, tmp_path):
    # given: key files of three of the four validators (quorum 3)
    source_dir = settings.LEDGER_VALIDATOR_KEY_DIR
    for name in ("city", "bank", "technopark"):
        (tmp_path / f"{name}.key").write_text((source_dir / f"{name}.key").read_text())
    settings.LEDGER_VALIDATOR_KEY_DIR = tmp_path
    settings.LEDGER_BLOCK_QUORUM = 3
    signing_keys.cache_clear()
    post_transfers(1)
    # when
    [block] = services.seal_pending_entries()
    # then
    signers = set(BlockAttestation.objects.filter(block=block).values_list("validator__name", flat=True))
    assert signers == {"city", "bank", "technopark"}
    assert verify_ledger().ok


def test_seal_blocks_command_seals_and_reports_the_block(validators):
    # given
    post_transfers(2)
    out = io.StringIO()
    # when
    call_command("seal_blocks", stdout=out)
    # then
    assert "Sealed block 0: 3 entries" in out.getvalue()
    assert not JournalEntry.objects.filter(block__isnull=True).exists()


def test_seal_blocks_command_without_keys_fails_with_the_code(db, settings, tmp_path):
    # given
    settings.LEDGER_VALIDATOR_KEY_DIR = tmp_path
    signing_keys.cache_clear()
    post_transfers(1)
    # when / then
    with pytest.raises(CommandError, match="validator_key_missing"):
        call_command("seal_blocks", stdout=io.StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_entry_that_commits_after_a_higher_id_was_sealed_goes_into_the_next_block(validators):
    # given: a writer that has inserted its entry (the lower id) but not committed yet
    slow_payer, slow_payee = funded_account(1_000), AccountFactory()
    quick_payer, quick_payee = funded_account(1_000), AccountFactory()
    inserted, release, done = threading.Event(), threading.Event(), threading.Event()
    slow_entry = {}

    def slow_writer():
        try:
            with transaction.atomic():
                slow_entry["entry"] = services.post_entry(lines=[(slow_payer, -10), (slow_payee, 10)], kind="slow")
                inserted.set()
                release.wait(timeout=10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inserted.wait(timeout=10)
    quick = services.post_entry(lines=[(quick_payer, -10), (quick_payee, 10)], kind="quick")
    # when
    [first] = services.seal_pending_entries()
    release.set()
    thread.join(timeout=10)
    [second] = services.seal_pending_entries()
    # then
    slow = slow_entry["entry"]
    assert slow.pk < quick.pk
    assert quick.pk in entry_ids_of(first) and slow.pk not in entry_ids_of(first)
    assert entry_ids_of(second) == [slow.pk]
    assert not JournalEntry.objects.filter(block__isnull=True).exists()
    assert verify_ledger().ok


# --- Merkle paths and inclusion proofs ------------------------------------------------------


@pytest.mark.parametrize("leaves", range(1, 10))
def test_every_merkle_path_leads_to_the_root(leaves):
    # given
    hashes = [bytes([i]) * 32 for i in range(leaves)]
    root = merkle_root(hashes)
    # when / then
    for index in range(leaves):
        assert root_from_path(hashes[index].hex(), merkle_path(hashes, index)) == root


@pytest.fixture
def proof(validators) -> dict:
    """The inclusion proof of the middle entry of a sealed block of five."""
    entries = post_transfers(4)
    services.seal_pending_entries()
    return build_inclusion_proof(JournalEntry.objects.get(pk=entries[1].pk))


def test_inclusion_proof_checks_out_with_only_the_validators_public_keys(validators, proof):
    # when
    problems = check_inclusion_proof(proof, trusted_keys(validators), quorum=3)
    # then
    assert problems == []
    assert proof["leaf_index"] == 2 and proof["block"]["entry_count"] == 5
    assert json.loads(json.dumps(proof)) == proof  # plain JSON, nothing else needed to check it


def test_inclusion_proof_with_a_changed_amount_is_refused(validators, proof):
    # given
    tampered = copy.deepcopy(proof)
    tampered["entry"]["canonical"][-1][0][2] += 1
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["entry_hash_mismatch"]


def test_inclusion_proof_with_a_changed_path_hash_is_refused(validators, proof):
    # given
    tampered = copy.deepcopy(proof)
    first_hash = tampered["merkle_path"][0]["hash"]
    tampered["merkle_path"][0]["hash"] = ("0" if first_hash[0] != "0" else "1") + first_hash[1:]
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["merkle_root_mismatch"]


def test_inclusion_proof_signed_by_an_untrusted_key_is_refused(validators, proof):
    # given: the verifier trusts only three of the four signers
    trusted = [k for k in trusted_keys(validators) if k["public_key"] != proof["block"]["signers"][0]]
    # when
    problems = check_inclusion_proof(proof, trusted, quorum=3)
    # then
    assert problems == ["untrusted_signer"]


def test_inclusion_proof_with_a_changed_block_header_is_refused(validators, proof):
    # given: the entry count changed and the block hash recomputed to match, so only the signature can tell
    tampered = copy.deepcopy(proof)
    header = tampered["block"]
    header["entry_count"] += 1
    header["hash"] = block_hash(**header_from_proof(header))
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["aggregate_signature_invalid"]


def test_inclusion_proof_whose_block_hash_does_not_match_its_header_is_refused(validators, proof):
    # given
    tampered = copy.deepcopy(proof)
    tampered["block"]["height"] += 1
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert "header_hash_mismatch" in problems
    assert "aggregate_signature_invalid" in problems


def test_inclusion_proof_with_too_few_signers_is_refused(validators, proof):
    # given
    tampered = copy.deepcopy(proof)
    tampered["block"]["signers"] = tampered["block"]["signers"][:2]
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert "quorum_not_met" in problems
    assert "aggregate_signature_invalid" in problems


def test_proof_of_an_unsealed_entry_is_refused_invalid_entry(db):
    # given
    [entry] = post_transfers(1)
    # when / then
    with pytest.raises(BankError) as refused:
        build_inclusion_proof(entry)
    assert refused.value.code == "invalid_entry"


def test_entry_proof_command_prints_a_json_proof_that_checks_out(validators):
    # given
    [entry] = post_transfers(1)
    services.seal_pending_entries()
    out = io.StringIO()
    # when
    call_command("entry_proof", str(entry.pk), stdout=out)
    # then
    printed = json.loads(out.getvalue())
    assert printed["entry"]["id"] == entry.pk
    assert check_inclusion_proof(printed, trusted_keys(validators), quorum=3) == []


def test_entry_proof_command_names_a_missing_or_unsealed_entry(db):
    # given
    [entry] = post_transfers(1)
    # when / then
    with pytest.raises(CommandError, match="invalid_entry"):
        call_command("entry_proof", str(entry.pk), stdout=io.StringIO())
    with pytest.raises(CommandError, match="No entry"):
        call_command("entry_proof", str(entry.pk + 1000), stdout=io.StringIO())
