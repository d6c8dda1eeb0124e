"""`manage.py seal_blocks`: seal the pending entries now, as the scheduled task does."""

from django.core.management.base import BaseCommand, CommandError

from bank.errors import BankError
from bank.services import seal_pending_entries


class Command(BaseCommand):
    help = "Seal all committed, unsealed journal entries and notarized documents into signed blocks."

    def handle(self, *args, **options):
        try:
            blocks = seal_pending_entries()
        except BankError as error:
            raise CommandError(f"{error.code}: {error}") from error
        if not blocks:
            self.stdout.write("Nothing to seal.")
        for block in blocks:
            self.stdout.write(
                f"Sealed block {block.height}: {block.entry_count} entries and {block.document_count} documents, "
                f"hash {block.hash}"
            )
