"""`manage.py document_proof DIGEST_HEX [--kind K]`: print the Merkle inclusion proof of one notarized document as JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from bank.errors import BankError
from bank.models import NotarizedDocument
from bank.proofs import build_document_proof


class Command(BaseCommand):
    help = "Print a JSON proof that a notarized document's digest is in an attested block."

    def add_arguments(self, parser):
        parser.add_argument("digest", help="The document's SHA-256, 64 hex digits.")
        parser.add_argument("--kind", help="The document kind, needed when the digest was notarized under several.")

    def handle(self, *args, digest, kind, **options):
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise CommandError("A digest is 64 hex digits (32 bytes).")
        documents = NotarizedDocument.objects.filter(digest=raw)
        if kind:
            documents = documents.filter(kind=kind)
        found = list(documents.order_by("pk")[:2])
        if not found:
            raise CommandError(f"No notarized document with digest {digest}" + (f" of kind {kind}." if kind else "."))
        if len(found) > 1:
            kinds = ", ".join(sorted(documents.values_list("kind", flat=True)))
            raise CommandError(f"The digest was notarized as several kinds ({kinds}): choose one with --kind.")
        try:
            proof = build_document_proof(found[0])
        except BankError as error:
            raise CommandError(f"{error.code}: {error}") from error
        self.stdout.write(json.dumps(proof, indent=2, ensure_ascii=False))
