"""Notarized documents sealed as leaves beside entries (header version 2), document proofs,
version 1 blocks still verifying, and verify_ledger naming a tampered document's block."""

import copy
import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from bank import bls, services
from bank.hashing import (
    GENESIS_PREV_HASH,
    block_hash,
    block_leaf_hashes,
    document_leaf_hash,
    entry_leaf_hash,
    header_from_proof,
    merkle_root,
    root_of_leaves,
)
from bank.models import Block, BlockAttestation, JournalEntry, NotarizedDocument
from bank.proofs import build_document_proof, build_inclusion_proof, check_document_proof, check_inclusion_proof
from bank.services.consortium import signing_keys
from bank.verification import verify_ledger
from tests.factories import AccountFactory, funded_account
from tests.support.ledger import raw_sql
from tests.support.proofs import trusted_keys


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def transfers(count: int) -> list[JournalEntry]:
    payer, payee = funded_account(10_000), AccountFactory()
    return [services.post_entry(lines=[(payer, -(i + 1)), (payee, i + 1)], kind="transfer") for i in range(count)]


def notarize(name: str, kind: str = "coldchain.event") -> NotarizedDocument:
    return services.notarize(digest=sha(name), kind=kind, reference=f"ref-{name}")


# --- leaf hashes ----------------------------------------------------------------------------


def test_leaf_hashes_follow_the_byte_layout_of_the_spec():
    entry_hash, digest = bytes(range(32)), bytes(range(32, 64))
    assert entry_leaf_hash(1, entry_hash) == hashlib.sha256(b"\x00" + entry_hash).digest()
    assert entry_leaf_hash(2, entry_hash) == hashlib.sha256(b"\x00bkrw-leaf/entry\x00" + entry_hash).digest()
    assert (
        document_leaf_hash("audit.event", digest)
        == hashlib.sha256(b"\x00bkrw-leaf/document\x00audit.event\x00" + digest).digest()
    )


def test_an_entry_leaf_never_equals_a_document_leaf_of_the_same_32_bytes():
    value = sha("same bytes")
    leaves = {entry_leaf_hash(1, value), entry_leaf_hash(2, value), document_leaf_hash("audit.event", value)}
    assert len(leaves) == 3
    assert document_leaf_hash("audit.event", value) != document_leaf_hash("coldchain.event", value)


def test_header_version_1_has_no_document_count_and_version_2_commits_to_it():
    header = {"height": 0, "prev_hash": GENESIS_PREV_HASH, "merkle_root": "ab" * 32, "entry_count": 1}
    sealed_at = timezone.now()
    assert block_hash(**header, sealed_at=sealed_at) == block_hash(**header, sealed_at=sealed_at, version=1)
    assert block_hash(**header, sealed_at=sealed_at, version=2, document_count=0) != block_hash(
        **header, sealed_at=sealed_at, version=2, document_count=1
    )
    with pytest.raises(ValueError):
        block_hash(**header, sealed_at=sealed_at, version=1, document_count=1)
    with pytest.raises(ValueError):
        block_hash(**header, sealed_at=sealed_at, version=3)


# --- sealing --------------------------------------------------------------------------------


def test_sealing_puts_entries_then_documents_in_id_order_into_one_version_2_block(validators):
    # given
    transfers(2)
    entries = list(JournalEntry.objects.order_by("pk"))
    documents = [notarize("a"), notarize("b", "safety.video"), notarize("c")]
    # when
    [block] = services.seal_pending_entries()
    # then
    assert (block.version, block.entry_count, block.document_count) == (2, len(entries), 3)
    leaves = block_leaf_hashes(
        2, [bytes.fromhex(e.hash) for e in entries], [(d.kind, bytes(d.digest)) for d in documents]
    )
    assert block.merkle_root == root_of_leaves(leaves)
    sealed = list(NotarizedDocument.objects.order_by("pk").values_list("block_id", "leaf_index"))
    assert sealed == [(block.pk, len(entries) + i) for i in range(3)]
    assert block.hash == block_hash(
        version=2,
        height=0,
        prev_hash=GENESIS_PREV_HASH,
        merkle_root=block.merkle_root,
        sealed_at=block.sealed_at,
        entry_count=len(entries),
        document_count=3,
    )
    publics = [bytes.fromhex(v.public_key) for v in validators]
    assert bls.verify_aggregate(publics, bytes.fromhex(block.hash), bytes.fromhex(block.aggregate_signature))
    report = verify_ledger()
    assert report.ok, report.failures
    assert (report.documents, report.unsealed_documents) == (3, 0)


def test_documents_alone_make_a_block_and_a_block_limit_counts_every_leaf(validators):
    # given
    transfers(1)  # its funding entry and itself
    for name in "abcde":
        notarize(name)
    # when
    blocks = services.seal_pending_entries(max_entries_per_block=3)
    # then
    assert [(b.entry_count, b.document_count) for b in blocks] == [(2, 1), (0, 3), (0, 1)]
    assert not NotarizedDocument.objects.filter(block__isnull=True).exists()
    assert verify_ledger().ok


def test_a_document_notarized_twice_is_sealed_once(validators):
    notarize("a")
    services.seal_pending_entries()
    again = notarize("a")
    assert services.seal_pending_entries() == []
    assert again.block_id == Block.objects.get().pk


# --- version 1 blocks -----------------------------------------------------------------------


def seal_version_1_block(entries: list[JournalEntry]) -> Block:
    """A block as sealing wrote it before version 2: entries only, RFC 6962 leaves without a tag."""
    header = {
        "height": 0,
        "prev_hash": GENESIS_PREV_HASH,
        "merkle_root": merkle_root([bytes.fromhex(e.hash) for e in entries]),
        "sealed_at": timezone.now(),
        "entry_count": len(entries),
    }
    digest = block_hash(**header)
    signatures = [(vid, bls.sign(secret, bytes.fromhex(digest))) for vid, secret in signing_keys()]
    block = Block.objects.create(
        **header, version=1, hash=digest, aggregate_signature=bls.aggregate([s for _, s in signatures]).hex()
    )
    BlockAttestation.objects.bulk_create(
        BlockAttestation(block=block, validator_id=vid, signature=sig.hex()) for vid, sig in signatures
    )
    JournalEntry.objects.filter(pk__in=[e.pk for e in entries]).update(block=block)
    return block


def test_a_version_1_block_keeps_verifying_and_proving_beside_version_2_blocks(validators):
    # given
    transfers(2)
    old = seal_version_1_block(list(JournalEntry.objects.order_by("pk")))
    [late] = transfers(1)
    notarize("after")
    # when
    [new] = services.seal_pending_entries()
    # then
    assert (old.version, new.version, new.prev_hash, new.height) == (1, 2, old.hash, 1)
    assert verify_ledger().ok
    first = JournalEntry.objects.filter(block=old).order_by("pk").first()
    for entry in (first, JournalEntry.objects.get(pk=late.pk)):
        proof = build_inclusion_proof(entry)
        assert check_inclusion_proof(proof, trusted_keys(validators), quorum=3) == []
    assert build_inclusion_proof(first)["block"]["v"] == 1
    assert "document_count" not in build_inclusion_proof(first)["block"]


# --- proofs ---------------------------------------------------------------------------------


@pytest.fixture
def sealed(validators):
    entries = transfers(2)
    documents = [notarize("a"), notarize("b", "safety.video"), notarize("c")]
    services.seal_pending_entries()
    return {
        "entries": [JournalEntry.objects.get(pk=e.pk) for e in entries],
        "documents": [NotarizedDocument.objects.get(pk=d.pk) for d in documents],
    }


def test_a_document_proof_verifies_with_only_the_trusted_keys(validators, sealed):
    for document in sealed["documents"]:
        proof = build_document_proof(document)
        assert proof["document"] == {"kind": document.kind, "digest": bytes(document.digest).hex()}
        assert "reference" not in json.dumps(proof)
        assert check_document_proof(proof, trusted_keys(validators), quorum=3) == []


def test_an_entry_proof_in_a_block_with_documents_verifies(validators, sealed):
    for entry in sealed["entries"]:
        assert check_inclusion_proof(build_inclusion_proof(entry), trusted_keys(validators), quorum=3) == []


def test_a_document_proof_for_another_digest_or_kind_is_refused(validators, sealed):
    proof = build_document_proof(sealed["documents"][1])
    other_digest = copy.deepcopy(proof)
    other_digest["document"]["digest"] = sha("not the video").hex()
    other_kind = copy.deepcopy(proof)
    other_kind["document"]["kind"] = "coldchain.event"
    for tampered in (other_digest, other_kind):
        assert check_document_proof(tampered, trusted_keys(validators), quorum=3) == ["merkle_root_mismatch"]


def test_an_entry_leaf_cannot_be_proven_as_a_document(validators, sealed):
    # given: an entry's leaf path, relabelled as a document whose digest is the entry's hash
    entry_proof = build_inclusion_proof(sealed["entries"][0])
    forged = {
        "format": "bkrw-document-proof/1",
        "document": {"kind": "audit.event", "digest": entry_proof["entry"]["hash"]},
        "leaf_index": entry_proof["leaf_index"],
        "merkle_path": entry_proof["merkle_path"],
        "block": entry_proof["block"],
    }
    # when
    problems = check_document_proof(forged, trusted_keys(validators), quorum=3)
    # then
    assert "merkle_root_mismatch" in problems


def test_a_document_proof_with_a_wrong_leaf_index_or_header_or_signers_is_refused(validators, sealed):
    proof = build_document_proof(sealed["documents"][0])
    keys = trusted_keys(validators)
    at_entry = copy.deepcopy(proof)
    at_entry["leaf_index"] = 0
    assert check_document_proof(at_entry, keys, 3) == ["leaf_index_out_of_range"]
    sibling = copy.deepcopy(proof)
    sibling["leaf_index"] += 1  # the next leaf sits at another depth of this tree: its path is shorter
    assert check_document_proof(sibling, keys, 3) == ["entry_count_mismatch"]
    recount = copy.deepcopy(proof)
    recount["block"]["document_count"] += 1
    recount["block"]["hash"] = block_hash(**header_from_proof(recount["block"]))
    assert check_document_proof(recount, keys, 3) == ["aggregate_signature_invalid"]
    one_signer_thrice = copy.deepcopy(proof)
    one_signer_thrice["block"]["signers"] = [proof["block"]["signers"][0]] * 3
    problems = check_document_proof(one_signer_thrice, keys, 3)
    assert "duplicate_signer" in problems and "quorum_not_met" in problems
    assert check_document_proof({**proof, "format": "bkrw-document-proof/9"}, keys, 3) == ["unknown_format"]


def test_document_proof_command_prints_the_proof_by_digest_and_kind(validators, sealed):
    document = sealed["documents"][1]
    out = io.StringIO()
    call_command("document_proof", bytes(document.digest).hex(), "--kind", "safety.video", stdout=out)
    assert json.loads(out.getvalue()) == build_document_proof(document)


def test_document_proof_command_refuses_an_unknown_unsealed_or_ambiguous_digest(validators, sealed):
    with pytest.raises(CommandError, match="No notarized document"):
        call_command("document_proof", sha("nothing").hex(), stdout=io.StringIO())
    with pytest.raises(CommandError, match="64 hex digits"):
        call_command("document_proof", "abc", stdout=io.StringIO())
    notarize("pending")
    with pytest.raises(CommandError, match="document_not_sealed"):
        call_command("document_proof", sha("pending").hex(), stdout=io.StringIO())
    notarize("a", "audit.event")  # "a" is also a coldchain.event
    with pytest.raises(CommandError, match="--kind"):
        call_command("document_proof", sha("a").hex(), stdout=io.StringIO())


# --- verify_ledger --------------------------------------------------------------------------


def test_a_deleted_document_names_its_block(validators, sealed):
    document = sealed["documents"][1]
    with raw_sql() as cursor:
        cursor.execute("DELETE FROM bank_notarizeddocument WHERE id = %s", [document.pk])
    failures = [str(f) for f in verify_ledger().failures]
    block = document.block.height
    assert f"block {block}: holds 2 documents, header says 3" in failures
    assert f"block {block}: Merkle root does not match its entries and documents" in failures


def test_a_changed_document_digest_names_its_block(validators, sealed):
    document = sealed["documents"][0]
    with raw_sql() as cursor:
        cursor.execute("UPDATE bank_notarizeddocument SET digest = %s WHERE id = %s", [sha("edited"), document.pk])
    report = verify_ledger()
    assert [str(f) for f in report.failures] == [
        f"block {document.block.height}: Merkle root does not match its entries and documents"
    ]
