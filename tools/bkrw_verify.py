#!/usr/bin/env python3
"""Check the ledger's proofs from outside: only the Python standard library and py-ecc.

    python tools/bkrw_verify.py entry --proof proof.json --keys keys.json [--quorum N] [--headers headers.json]
    python tools/bkrw_verify.py chain --headers headers.json --keys keys.json [--quorum N]

Written from docs/PROOFS.md alone and never importing the project, so a third party
can read it in one sitting, run it on exported files (`manage.py export_verifier_data`),
and trust its verdict without trusting our code. Exit status 0 when everything holds,
1 with a one-line verdict naming every reason that failed (the codes of docs/PROOFS.md,
"What a verifier refuses"), 2 for a usage error.

Every byte rule lives in this file once: add a header version to HEADER_FORMATS and a
proof (leaf) format to PROOF_FORMATS; the checks dispatch on them.
"""

import argparse
import hashlib
import json
import re
import sys

from py_ecc.bls import G2ProofOfPossession as bls

# Entry-proof reasons: the same codes as bank.proofs.REASONS (a test holds them equal).
REASONS = {
    "malformed_proof": "the proof lacks a field or a field has the wrong type",
    "unknown_format": "the proof's format is not one this checker knows",
    "entry_hash_mismatch": "the entry's hash does not match its canonical contents",
    "leaf_index_out_of_range": "the leaf index is not the place of a leaf of this kind in the block",
    "entry_count_mismatch": "the Merkle path's length is not that of a block with these counts",
    "leaf_index_mismatch": "the Merkle path's sides are not those of the leaf at this index",
    "merkle_root_mismatch": "the Merkle path does not lead to the block's root",
    "header_hash_mismatch": "the block header does not hash to the block's hash",
    "genesis_prev_hash_not_zero": "the first block's prev_hash is not 64 zeros",
    "unproven_key": "a trusted key comes without a valid proof of possession",
    "duplicate_signer": "a signer is listed more than once",
    "untrusted_signer": "a signer is not one of the trusted validators",
    "quorum_not_met": "fewer distinct trusted validators signed than the quorum",
    "aggregate_signature_invalid": "the validators' aggregate signature does not verify",
}
# What only a list of headers can show.
CHAIN_REASONS = {
    "no_headers": "the headers file holds no header",
    "height_gap": "a header's height is not one more than the one before it",
    "prev_hash_mismatch": "a header's prev_hash is not the previous header's hash",
    "header_not_in_chain": "the proof's block header is not the exported header of that height",
    "unreadable_input": "a file is missing or is not JSON",
}

GENESIS_HEIGHT = 0
GENESIS_PREV_HASH = "00" * 32
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- canonical bytes -------------------------------------------------------------------


def canonical_json(value) -> bytes:
    """Sorted keys, no spaces, non-ASCII unescaped, UTF-8 (docs/PROOFS.md "Entry hash")."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _header_v1(header: dict) -> bytes:
    fields = ("height", "prev_hash", "merkle_root", "sealed_at_us", "entry_count")
    return canonical_json({"v": 1, **{name: header[name] for name in fields}})


def _header_v2(header: dict) -> bytes:
    fields = ("height", "prev_hash", "merkle_root", "sealed_at_us", "entry_count", "document_count")
    return canonical_json({"v": 2, **{name: header[name] for name in fields}})


# Header version -> the bytes its hash covers. A header without "v" is version 1
# (the field was added with version 2).
HEADER_FORMATS = {1: _header_v1, 2: _header_v2}


def header_version(header: dict):
    return header.get("v", 1)


def header_hash(header: dict) -> str:
    return sha256_hex(HEADER_FORMATS[header_version(header)](header))


# --- Merkle tree (RFC 6962) ------------------------------------------------------------


def merkle_leaf(leaf_hash_hex: str, version: int = 1) -> bytes:
    """An entry's leaf: version 1 hashes the entry hash alone; version 2 tags it, so
    that no entry can pass for a notarized document (docs/PROOFS.md)."""
    tag = b"" if version == 1 else b"bkrw-leaf/entry\x00"
    return hashlib.sha256(b"\x00" + tag + bytes.fromhex(leaf_hash_hex)).digest()


def merkle_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf_hash_hex: str, path: list, version: int = 1) -> str:
    node = merkle_leaf(leaf_hash_hex, version)
    for step in path:
        sibling = bytes.fromhex(step["hash"])
        node = merkle_node(sibling, node) if step["side"] == "left" else merkle_node(node, sibling)
    return node.hex()


def expected_path_sides(leaf_index: int, leaf_count: int) -> list:
    """A lone last node is carried up a level and adds no step, so the sides fix the index."""
    sides = []
    index, width = leaf_index, leaf_count
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            sides.append("left" if sibling < index else "right")
        index, width = index // 2, (width + 1) // 2
    return sides


# --- leaves: proof format -> (the leaf's own checks, its leaf count in the header) -------


def _entry_leaf_problems(proof: dict) -> list:
    entry = proof["entry"]
    if not isinstance(entry.get("canonical"), list) or not _is_hex64(entry.get("hash")):
        raise _Malformed
    return [] if sha256_hex(canonical_json(entry["canonical"])) == entry["hash"] else ["entry_hash_mismatch"]


PROOF_FORMATS = {
    "bkrw-inclusion-proof/1": {"leaf": "entry", "leaf_problems": _entry_leaf_problems, "count": "entry_count"},
}


# --- checks ----------------------------------------------------------------------------


class _Malformed(Exception):
    pass


def _is_hex64(value) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_well_formed(header) -> bool:
    try:
        return (
            all(_is_int(header[n]) for n in ("height", "sealed_at_us", "entry_count"))
            and _is_int(header.get("document_count", 0))
            and all(_is_hex64(header[n]) for n in ("prev_hash", "merkle_root", "hash"))
            and isinstance(header["aggregate_signature"], str)
            and isinstance(header["signers"], list)
            and all(isinstance(s, str) for s in header["signers"])
        )
    except (KeyError, TypeError, AttributeError):
        return False


def proven_keys(keys: list) -> tuple:
    """The public keys whose proof of possession verifies, and the problems of the others."""
    proven, problems = set(), []
    for key in keys:
        public = key.get("public_key") if isinstance(key, dict) else None
        possession = key.get("proof_of_possession") if isinstance(key, dict) else None
        try:
            holds = bls.PopVerify(bytes.fromhex(public), bytes.fromhex(possession))
        except Exception:  # a malformed key or proof proves nothing
            holds = False
        if holds:
            proven.add(public)
        else:
            problems.append("unproven_key")
    return proven, problems


def header_problems(header: dict) -> list:
    """The header hashes to its hash, and the first block links to nothing."""
    problems = []
    if header_hash(header) != header["hash"]:
        problems.append("header_hash_mismatch")
    if header["height"] == GENESIS_HEIGHT and header["prev_hash"] != GENESIS_PREV_HASH:
        problems.append("genesis_prev_hash_not_zero")
    return problems


def signature_problems(header: dict, proven: set, quorum: int) -> list:
    """The quorum of distinct proven keys signed the header's recomputed hash, each counted once."""
    problems = []
    signers = header["signers"]
    if len(set(signers)) != len(signers):
        problems.append("duplicate_signer")
    if not set(signers) <= proven:
        problems.append("untrusted_signer")
    if len(set(signers) & proven) < quorum:
        problems.append("quorum_not_met")
    try:
        signed = bls.FastAggregateVerify(
            [bytes.fromhex(s) for s in signers],
            bytes.fromhex(header_hash(header)),
            bytes.fromhex(header["aggregate_signature"]),
        )
    except Exception:
        signed = False
    if not signed:
        problems.append("aggregate_signature_invalid")
    return problems


def entry_proof_problems(proof, keys: list, quorum: int) -> list:
    """The codes of REASONS the proof fails on, in the order bank.proofs.check_inclusion_proof finds them."""
    if not isinstance(proof, dict) or "format" not in proof:
        return ["malformed_proof"]
    kind = PROOF_FORMATS.get(proof["format"])
    if kind is None:
        return ["unknown_format"]
    try:
        block, path, index = proof["block"], proof["merkle_path"], proof["leaf_index"]
        if isinstance(block, dict) and header_version(block) not in HEADER_FORMATS:
            return ["unknown_format"]
        if not _header_well_formed(block) or not _is_int(index) or not isinstance(path, list):
            raise _Malformed
        if not all(_is_hex64(step["hash"]) and step["side"] in ("left", "right") for step in path):
            raise _Malformed
        problems = kind["leaf_problems"](proof)
        leaf_hash = proof[kind["leaf"]]["hash"]
    except (_Malformed, KeyError, TypeError, AttributeError):
        return ["malformed_proof"]
    count = block[kind["count"]]  # entries come first among a block's leaves
    if not 0 <= index < count:
        problems.append("leaf_index_out_of_range")
    else:
        sides = expected_path_sides(index, count + block.get("document_count", 0))
        if len(sides) != len(path):
            problems.append("entry_count_mismatch")
        elif sides != [step["side"] for step in path]:
            problems.append("leaf_index_mismatch")
    if root_from_path(leaf_hash, path, header_version(block)) != block["merkle_root"]:
        problems.append("merkle_root_mismatch")
    proven, key_problems = proven_keys(keys)
    problems += header_problems(block) + key_problems + signature_problems(block, proven, quorum)
    return list(dict.fromkeys(problems))


def chain_problems(headers, keys: list, quorum: int) -> list:
    """(height, code) for every header that fails, and for every broken link."""
    if not isinstance(headers, list) or not headers:
        return [(None, "no_headers")]
    proven, key_problems = proven_keys(keys)
    found = [(None, code) for code in dict.fromkeys(key_problems)]
    previous = None
    for header in headers:
        if isinstance(header, dict) and header_version(header) not in HEADER_FORMATS:
            found.append((header.get("height"), "unknown_format"))
            previous = None
            continue
        if not _header_well_formed(header):
            found.append((None, "malformed_proof"))
            previous = None
            continue
        height = header["height"]
        found += [(height, code) for code in header_problems(header) + signature_problems(header, proven, quorum)]
        if previous is not None:
            if height != previous["height"] + 1:
                found.append((height, "height_gap"))
            if header["prev_hash"] != previous["hash"]:
                found.append((height, "prev_hash_mismatch"))
        previous = header
    return found


# --- command line ----------------------------------------------------------------------


def _load(path: str):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _keys_and_quorum(document, quorum_flag):
    """keys.json is {"quorum": N, "keys": [{"public_key", "proof_of_possession", ...}]};
    --quorum overrides the file's quorum (a verifier may demand more)."""
    keys = document.get("keys", []) if isinstance(document, dict) else []
    quorum = quorum_flag if quorum_flag is not None else (document or {}).get("quorum")
    return keys, quorum


def _sentence(code: str) -> str:
    return REASONS.get(code) or CHAIN_REASONS[code]


def _refuse(what: str, codes: list) -> int:
    codes = list(dict.fromkeys(codes))
    print(f"REFUSED {what}: " + ", ".join(codes) + " (" + "; ".join(_sentence(c) for c in codes) + ")")
    return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    entry = commands.add_parser("entry", help="check one entry's inclusion proof and its block's signatures")
    entry.add_argument("--proof", required=True)
    entry.add_argument("--keys", required=True)
    entry.add_argument("--headers", help="also check the proof's block is the exported header of its height")
    entry.add_argument("--quorum", type=int)
    chain = commands.add_parser("chain", help="check the chain of prev_hash and every header's signature")
    chain.add_argument("--headers", required=True)
    chain.add_argument("--keys", required=True)
    chain.add_argument("--quorum", type=int)
    args = parser.parse_args(argv)

    try:
        keys, quorum = _keys_and_quorum(_load(args.keys), args.quorum)
        headers_document = _load(args.headers) if args.headers else None
        proof = _load(args.proof) if args.command == "entry" else None
    except (OSError, ValueError) as error:
        print(f"REFUSED: unreadable_input ({error})")
        return 1
    if not _is_int(quorum) or quorum < 1:
        parser.error("the quorum is at least 1: give --quorum N or a keys.json with a quorum")
    headers = headers_document.get("headers") if isinstance(headers_document, dict) else headers_document

    if args.command == "entry":
        codes = entry_proof_problems(proof, keys, quorum)
        if headers is not None and "malformed_proof" not in codes and "unknown_format" not in codes:
            by_height = (
                {h.get("height"): h for h in headers if isinstance(h, dict)} if isinstance(headers, list) else {}
            )
            exported = by_height.get(proof["block"]["height"])
            if exported is None or exported.get("hash") != proof["block"]["hash"]:
                codes.append("header_not_in_chain")
        if codes:
            return _refuse("entry proof", codes)
        block = proof["block"]
        signers = len(set(block["signers"]))
        print(
            f"OK entry {proof['entry']['hash']} is leaf {proof['leaf_index']} of block {block['height']} "
            f"{block['hash']}, signed by {signers} distinct trusted validators (quorum {quorum})"
        )
        return 0

    found = chain_problems(headers, keys, quorum)
    if found:
        first_height = next((h for h, _ in found if h is not None), None)
        where = "chain" if first_height is None else f"chain at height {first_height}"
        return _refuse(where, [code for _, code in found])
    print(
        f"OK chain of {len(headers)} headers, heights {headers[0]['height']}..{headers[-1]['height']}, "
        f"every link and every quorum signature holds (quorum {quorum}), head {headers[-1]['hash']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
