"""Each loophole of the inclusion-proof checker closed, as a refusal with its named reason.

Every case starts from the proof of a real sealed block and changes the JSON the way
a forger would; where the forger could also re-sign (a validator's own key), the test
re-signs, so the refusal cannot come from the signature alone."""

import copy

import pytest

from bank import bls, services
from bank.hashing import GENESIS_PREV_HASH
from bank.models import BlockAttestation, JournalEntry
from bank.proofs import REASONS, build_inclusion_proof, check_inclusion_proof, expected_path_sides
from tests.support.proofs import post_transfers, rehash, resign, trusted_keys


@pytest.fixture
def proof(validators) -> dict:
    """The proof of the third of five entries in the genesis block, signed by all four validators."""
    entries = post_transfers(4)
    services.seal_pending_entries()
    return build_inclusion_proof(JournalEntry.objects.get(pk=entries[1].pk))


def test_the_untouched_proof_holds(validators, proof):
    assert check_inclusion_proof(proof, trusted_keys(validators), quorum=3) == []


def test_one_validator_listed_three_times_is_not_a_quorum_of_three(validators, proof):
    # given: one validator's own signature added to itself three times, which FastAggregateVerify accepts
    attestation = BlockAttestation.objects.select_related("validator").order_by("validator_id").first()
    tampered = copy.deepcopy(proof)
    tampered["block"]["signers"] = [attestation.validator.public_key] * 3
    tampered["block"]["aggregate_signature"] = bls.aggregate([bytes.fromhex(attestation.signature)] * 3).hex()
    assert bls.verify_aggregate(
        [bytes.fromhex(k) for k in tampered["block"]["signers"]],
        bytes.fromhex(proof["block"]["hash"]),
        bytes.fromhex(tampered["block"]["aggregate_signature"]),
    )
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["duplicate_signer", "quorum_not_met"]


def test_a_duplicate_signer_is_refused_even_when_the_distinct_ones_reach_the_quorum(validators, proof):
    # given: four distinct signers and the first once more, its signature added once more
    first = BlockAttestation.objects.select_related("validator").order_by("validator_id").first()
    tampered = copy.deepcopy(proof)
    tampered["block"]["signers"].append(first.validator.public_key)
    tampered["block"]["aggregate_signature"] = bls.aggregate(
        [bytes.fromhex(proof["block"]["aggregate_signature"]), bytes.fromhex(first.signature)]
    ).hex()
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["duplicate_signer"]


def test_a_leaf_index_that_is_not_the_paths_position_is_refused(validators, proof):
    # given
    tampered = copy.deepcopy(proof)
    tampered["leaf_index"] = 3
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["leaf_index_mismatch"]


def test_a_leaf_index_beyond_the_entry_count_is_refused(validators, proof):
    # given
    tampered = copy.deepcopy(proof)
    tampered["leaf_index"] = proof["block"]["entry_count"]
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["leaf_index_out_of_range"]


def test_an_entry_count_the_path_does_not_fit_is_refused_even_when_signed(validators, validator_key_material, proof):
    # given: the header says three entries, re-hashed and re-signed; the path is that of one of five
    tampered = copy.deepcopy(proof)
    tampered["block"]["entry_count"] = 3
    rehash(tampered["block"])
    resign(tampered["block"], validator_key_material)
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["entry_count_mismatch"]


@pytest.mark.parametrize(
    "damage",
    [lambda p: p.update(format="bkrw-inclusion-proof/99"), lambda p: p["block"].update(v=99)],
    ids=["proof format", "header version"],
)
def test_an_unknown_format_is_refused_before_anything_else(validators, proof, damage):
    # given
    tampered = copy.deepcopy(proof)
    damage(tampered)
    # when / then
    assert check_inclusion_proof(tampered, trusted_keys(validators), quorum=3) == ["unknown_format"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.pop("merkle_path"),
        lambda p: p["block"].update(entry_count="5"),
        lambda p: p["merkle_path"][0].update(side="up"),
        lambda p: p["block"].update(prev_hash="00"),
    ],
    ids=["no path", "count as text", "bad side", "short hash"],
)
def test_a_malformed_proof_is_refused_not_raised(validators, proof, damage):
    # given
    tampered = copy.deepcopy(proof)
    damage(tampered)
    # when / then
    assert check_inclusion_proof(tampered, trusted_keys(validators), quorum=3) == ["malformed_proof"]


def test_a_genesis_block_that_links_to_something_is_refused_even_when_signed(validators, validator_key_material, proof):
    # given
    tampered = copy.deepcopy(proof)
    assert (proof["block"]["height"], proof["block"]["prev_hash"]) == (0, GENESIS_PREV_HASH)
    tampered["block"]["prev_hash"] = "ab" * 32
    rehash(tampered["block"])
    resign(tampered["block"], validator_key_material)
    # when
    problems = check_inclusion_proof(tampered, trusted_keys(validators), quorum=3)
    # then
    assert problems == ["genesis_prev_hash_not_zero"]


def test_a_trusted_key_without_its_proof_of_possession_is_refused_and_not_counted(validators, proof):
    # given: one key published with another key's proof
    keys = trusted_keys(validators)
    keys[0]["proof_of_possession"] = keys[1]["proof_of_possession"]
    # when
    problems = check_inclusion_proof(proof, keys, quorum=3)
    # then: the other three still make the quorum, but the unproven signer is not trusted
    assert problems == ["unproven_key", "untrusted_signer"]
    assert check_inclusion_proof(proof, keys, quorum=4)[-2:] == ["untrusted_signer", "quorum_not_met"]


def test_keys_given_without_any_proof_of_possession_prove_nothing(validators, proof):
    # given
    keys = [{"public_key": k["public_key"]} for k in trusted_keys(validators)]
    # when
    problems = check_inclusion_proof(proof, keys, quorum=3)
    # then
    assert problems == ["unproven_key", "untrusted_signer", "quorum_not_met"]


@pytest.mark.parametrize("count", range(1, 12))
def test_the_expected_sides_are_those_of_the_built_path(count):
    from bank.hashing import merkle_path

    hashes = [bytes([i]) * 32 for i in range(count)]
    for index in range(count):
        assert expected_path_sides(index, count) == [step["side"] for step in merkle_path(hashes, index)]


def test_every_reason_has_a_sentence():
    assert all(code.isidentifier() and sentence for code, sentence in REASONS.items())


def test_docs_list_every_reason_the_checker_and_the_verifier_give():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    section = (root / "docs" / "PROOFS.md").read_text().split("## What a verifier refuses", 1)[1]
    spec = importlib.util.spec_from_file_location("bkrw_verify", root / "tools" / "bkrw_verify.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for code in [*REASONS, *tool.CHAIN_REASONS]:
        assert f"| `{code}` |" in section, code
