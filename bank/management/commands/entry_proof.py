"""`manage.py entry_proof ID`: print the Merkle inclusion proof of one entry as JSON."""

import json

from django.core.management.base import BaseCommand, CommandError

from bank.errors import BankError
from bank.models import JournalEntry
from bank.proofs import build_inclusion_proof


class Command(BaseCommand):
    help = "Print a JSON proof that an entry is in an attested block."

    def add_arguments(self, parser):
        parser.add_argument("entry_id", type=int)

    def handle(self, *args, entry_id, **options):
        entry = JournalEntry.objects.filter(pk=entry_id).first()
        if entry is None:
            raise CommandError(f"No entry #{entry_id}.")
        try:
            proof = build_inclusion_proof(entry)
        except BankError as error:
            raise CommandError(f"{error.code}: {error}") from error
        self.stdout.write(json.dumps(proof, indent=2, ensure_ascii=False))
