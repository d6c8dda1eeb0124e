"""tools/bkrw_verify.py run as a third party would: a subprocess, outside the project, on
files exported from a real sealed ledger by `manage.py export_verifier_data`.

Each tampered case is refused with the same reasons as bank.proofs.check_inclusion_proof."""

import ast
import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from bank import bls, proofs, services
from bank.hashing import GENESIS_PREV_HASH
from bank.proofs import check_inclusion_proof
from tests.support.proofs import post_transfers, rehash, resign

VERIFIER = Path(__file__).resolve().parents[2] / "tools" / "bkrw_verify.py"


def run_verifier(*args, cwd) -> tuple[int, str]:
    """Run from an empty folder with no project settings: only the tool's own folder is on sys.path."""
    done = subprocess.run(
        [sys.executable, str(VERIFIER), *map(str, args)],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    return done.returncode, lines[0]


def codes_of(verdict: str) -> list[str]:
    assert verdict.startswith("REFUSED"), verdict
    return verdict.split(": ", 1)[1].split(" (", 1)[0].split(", ")


def load(path: Path):
    return json.loads(path.read_text())


def save(path: Path, document) -> Path:
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def exported(validators, tmp_path) -> Path:
    """Six entries sealed two a block (heights 0, 1, 2), exported: keys, headers, one proof per block."""
    post_transfers(5)
    services.seal_pending_entries(max_entries_per_block=2)
    call_command("export_verifier_data", str(tmp_path / "out"), stdout=open("/dev/null", "w"))
    return tmp_path / "out"


def first_proof(exported: Path) -> dict:
    return load(sorted((exported / "proofs").glob("entry-*.json"))[0])


# --- the tool stands alone --------------------------------------------------------------


def test_the_verifier_imports_only_the_standard_library_and_py_ecc():
    tree = ast.parse(VERIFIER.read_text())
    modules = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert modules - set(sys.stdlib_module_names) == {"py_ecc"}


def test_the_verifier_refuses_with_the_checkers_reasons():
    spec = importlib.util.spec_from_file_location("bkrw_verify", VERIFIER)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.REASONS == proofs.REASONS
    assert set(tool.CHAIN_REASONS).isdisjoint(tool.REASONS)


def test_export_writes_keys_with_their_proofs_headers_in_height_order_and_a_proof_per_block(exported, validators):
    keys = load(exported / "keys.json")
    assert keys["quorum"] == 3
    assert {(k["public_key"], k["proof_of_possession"]) for k in keys["keys"]} == {
        (v.public_key, v.proof_of_possession) for v in validators
    }
    headers = load(exported / "headers.json")["headers"]
    assert [h["height"] for h in headers] == [0, 1, 2]
    assert [h["prev_hash"] for h in headers] == [GENESIS_PREV_HASH, headers[0]["hash"], headers[1]["hash"]]
    for path in (exported / "proofs").glob("*.json"):
        proof = load(path)
        assert proof["block"]["hash"] == headers[proof["block"]["height"]]["hash"]
    assert len(list((exported / "proofs").glob("*.json"))) == 3


# --- entry proofs -----------------------------------------------------------------------


def test_an_exported_entry_proof_verifies(exported, tmp_path):
    # when
    status, verdict = run_verifier(
        "entry",
        "--proof",
        sorted((exported / "proofs").glob("*.json"))[1],
        "--keys",
        exported / "keys.json",
        "--headers",
        exported / "headers.json",
        cwd=tmp_path,
    )
    # then
    assert (status, verdict.split()[0]) == (0, "OK"), verdict


def flip_a_bit_in_a_sibling(proof, context):
    step = proof["merkle_path"][0]
    step["hash"] = f"{int(step['hash'][0], 16) ^ 1:x}" + step["hash"][1:]


def header_of_another_height(proof, context):
    proof["block"] = context["headers"][1]


def fewer_signers_than_the_quorum(proof, context):
    proof["block"]["signers"] = proof["block"]["signers"][:2]


def one_signer_three_times(proof, context):
    attestation = context["attestation"]
    proof["block"]["signers"] = [attestation.validator.public_key] * 3
    proof["block"]["aggregate_signature"] = bls.aggregate([bytes.fromhex(attestation.signature)] * 3).hex()


def wrong_leaf_index(proof, context):
    proof["leaf_index"] = 1


def bad_genesis_resigned(proof, context):
    proof["block"]["prev_hash"] = "ab" * 32
    rehash(proof["block"])
    resign(proof["block"], context["material"])


def wrong_entry_count_resigned(proof, context):
    proof["block"]["entry_count"] = 5
    rehash(proof["block"])
    resign(proof["block"], context["material"])


def unknown_format(proof, context):
    proof["format"] = "bkrw-inclusion-proof/7"


def a_key_swapped(keys, context):
    secret = bls.secret_key_bytes(0xFEED)
    keys["keys"][0].update(
        public_key=bls.public_key(secret).hex(), proof_of_possession=bls.prove_possession(secret).hex()
    )


def a_key_without_its_proof(keys, context):
    keys["keys"][0]["proof_of_possession"] = keys["keys"][1]["proof_of_possession"]


@pytest.mark.parametrize(
    ("tamper_proof", "tamper_keys", "expected"),
    [
        (flip_a_bit_in_a_sibling, None, ["merkle_root_mismatch"]),
        (header_of_another_height, None, ["merkle_root_mismatch"]),
        (None, a_key_swapped, ["untrusted_signer"]),
        (None, a_key_without_its_proof, ["unproven_key", "untrusted_signer"]),
        (fewer_signers_than_the_quorum, None, ["quorum_not_met", "aggregate_signature_invalid"]),
        (one_signer_three_times, None, ["duplicate_signer", "quorum_not_met"]),
        (wrong_leaf_index, None, ["leaf_index_mismatch"]),
        (wrong_entry_count_resigned, None, ["entry_count_mismatch"]),
        (bad_genesis_resigned, None, ["genesis_prev_hash_not_zero"]),
        (unknown_format, None, ["unknown_format"]),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_tampered_entry_proof_is_refused_by_the_verifier_as_by_the_checker(
    exported, tmp_path, validator_key_material, tamper_proof, tamper_keys, expected
):
    # given: the genesis block's first entry (index 0 of 2)
    from bank.models import BlockAttestation

    context = {
        "headers": load(exported / "headers.json")["headers"],
        "material": validator_key_material,
        "attestation": BlockAttestation.objects.filter(block__height=0).select_related("validator").first(),
    }
    proof, keys = first_proof(exported), load(exported / "keys.json")
    assert proof["block"]["height"] == 0 and proof["leaf_index"] == 0
    proof, keys = copy.deepcopy(proof), copy.deepcopy(keys)
    if tamper_proof:
        tamper_proof(proof, context)
    if tamper_keys:
        tamper_keys(keys, context)
    # when
    status, verdict = run_verifier(
        "entry", "--proof", save(tmp_path / "p.json", proof), "--keys", save(tmp_path / "k.json", keys), cwd=tmp_path
    )
    # then
    assert status == 1
    assert codes_of(verdict) == expected
    assert check_inclusion_proof(proof, keys["keys"], quorum=keys["quorum"]) == expected


def test_a_proof_whose_block_is_not_the_exported_header_is_refused(exported, tmp_path, validator_key_material):
    # given: a genesis block re-signed by every validator key with a different time: a fork
    proof = first_proof(exported)
    proof["block"]["sealed_at_us"] += 1
    rehash(proof["block"])
    resign(proof["block"], validator_key_material)
    assert check_inclusion_proof(proof, load(exported / "keys.json")["keys"], quorum=3) == []
    # when
    status, verdict = run_verifier(
        "entry",
        "--proof",
        save(tmp_path / "p.json", proof),
        "--keys",
        exported / "keys.json",
        "--headers",
        exported / "headers.json",
        cwd=tmp_path,
    )
    # then
    assert (status, codes_of(verdict)) == (1, ["header_not_in_chain"])


def test_a_higher_quorum_than_the_signers_is_refused(exported, tmp_path):
    # given: all four validators signed block 0, and this verifier demands five
    proof = first_proof(exported)
    # when
    status, verdict = run_verifier(
        "entry",
        "--proof",
        save(tmp_path / "p.json", proof),
        "--keys",
        exported / "keys.json",
        "--quorum",
        5,
        cwd=tmp_path,
    )
    # then
    assert (status, codes_of(verdict)) == (1, ["quorum_not_met"])


def test_an_unreadable_file_is_named(exported, tmp_path):
    status, verdict = run_verifier(
        "entry", "--proof", tmp_path / "none.json", "--keys", exported / "keys.json", cwd=tmp_path
    )
    assert (status, codes_of(verdict)) == (1, ["unreadable_input"])


# --- the chain of headers ---------------------------------------------------------------


def test_the_exported_chain_verifies(exported, tmp_path):
    status, verdict = run_verifier(
        "chain", "--headers", exported / "headers.json", "--keys", exported / "keys.json", cwd=tmp_path
    )
    assert (status, verdict.split()[0]) == (0, "OK"), verdict


def rewrite_block_1_resigned(headers, context):
    headers[1]["merkle_root"] = "cd" * 32
    rehash(headers[1])
    resign(headers[1], context["material"])


def drop_block_1(headers, context):
    del headers[1]


def block_2_with_two_signers(headers, context):
    headers[2]["signers"] = headers[2]["signers"][:2]


def genesis_linked_resigned(headers, context):
    headers[0]["prev_hash"] = "ab" * 32
    rehash(headers[0])
    resign(headers[0], context["material"])


def block_1_signer_listed_twice(headers, context):
    headers[1]["signers"] = headers[1]["signers"][:2] + headers[1]["signers"][:1]


@pytest.mark.parametrize(
    ("tamper", "verdict_start", "expected"),
    [
        (rewrite_block_1_resigned, "REFUSED chain at height 2", ["prev_hash_mismatch"]),
        (drop_block_1, "REFUSED chain at height 2", ["height_gap", "prev_hash_mismatch"]),
        (block_2_with_two_signers, "REFUSED chain at height 2", ["quorum_not_met", "aggregate_signature_invalid"]),
        (genesis_linked_resigned, "REFUSED chain at height 0", ["genesis_prev_hash_not_zero", "prev_hash_mismatch"]),
        (
            block_1_signer_listed_twice,
            "REFUSED chain at height 1",
            ["duplicate_signer", "quorum_not_met", "aggregate_signature_invalid"],
        ),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_tampered_chain_is_refused_at_the_height_that_breaks(
    exported, tmp_path, validator_key_material, tamper, verdict_start, expected
):
    # given
    headers = load(exported / "headers.json")
    tamper(headers["headers"], {"material": validator_key_material})
    # when
    status, verdict = run_verifier(
        "chain", "--headers", save(tmp_path / "h.json", headers), "--keys", exported / "keys.json", cwd=tmp_path
    )
    # then
    assert status == 1
    assert verdict.startswith(verdict_start + ":"), verdict
    assert codes_of(verdict) == expected
