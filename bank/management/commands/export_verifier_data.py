"""`manage.py export_verifier_data OUTDIR`: the files tools/bkrw_verify.py checks.

Writes OUTDIR/keys.json (the validators' public keys with their proofs of possession,
and the quorum in force), OUTDIR/headers.json (every sealed block header with its
aggregate signature and signers, in height order) and OUTDIR/proofs/entry-<id>.json
(inclusion proofs: the entries given with --entry, else the first entry of each block).
Public data only: hashes, keys and the canonical entries the proofs already publish.
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bank.errors import BankError
from bank.models import Block, BlockAttestation, JournalEntry, ValidatorKey
from bank.proofs import build_inclusion_proof, published_header

KEYS_FORMAT = "bkrw-validator-keys/1"
HEADERS_FORMAT = "bkrw-headers/1"


def exported_keys() -> dict:
    keys = ValidatorKey.objects.order_by("name").values("name", "public_key", "proof_of_possession", "is_active")
    return {"format": KEYS_FORMAT, "quorum": settings.LEDGER_BLOCK_QUORUM, "keys": list(keys)}


def exported_headers() -> dict:
    signers: dict[int, list[str]] = {}
    attestations = BlockAttestation.objects.order_by("block_id", "validator_id").values_list(
        "block_id", "validator__public_key"
    )
    for block_id, public_key in attestations.iterator():
        signers.setdefault(block_id, []).append(public_key)
    headers = [
        published_header(block, signers.get(block.pk, [])) for block in Block.objects.order_by("height").iterator()
    ]
    return {"format": HEADERS_FORMAT, "headers": headers}


class Command(BaseCommand):
    help = "Write keys.json, headers.json and entry proofs for the standalone verifier (tools/bkrw_verify.py)."

    def add_arguments(self, parser):
        parser.add_argument("outdir", type=Path)
        parser.add_argument("--entry", type=int, action="append", default=[], help="an entry id to prove (repeat)")

    def handle(self, *args, outdir: Path, entry: list[int], **options):
        if entry:
            entries = list(JournalEntry.objects.filter(pk__in=entry))
            missing = set(entry) - {e.pk for e in entries}
            if missing:
                raise CommandError(f"No entry #{min(missing)}.")
        else:
            firsts = {}
            for pk, block_id in (
                JournalEntry.objects.filter(block__isnull=False).order_by("pk").values_list("pk", "block_id")
            ):
                firsts.setdefault(block_id, pk)
            entries = list(JournalEntry.objects.filter(pk__in=firsts.values()))
        try:
            proofs = {e.pk: build_inclusion_proof(e) for e in entries}
        except BankError as error:
            raise CommandError(f"{error.code}: {error}") from error
        (outdir / "proofs").mkdir(parents=True, exist_ok=True)
        _write(outdir / "keys.json", exported_keys())
        headers = exported_headers()
        _write(outdir / "headers.json", headers)
        for pk, proof in sorted(proofs.items()):
            _write(outdir / "proofs" / f"entry-{pk}.json", proof)
        self.stdout.write(
            f"Wrote {outdir}/keys.json, headers.json ({len(headers['headers'])} headers) and {len(proofs)} proofs."
        )


def _write(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
