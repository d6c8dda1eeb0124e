"""`manage.py verify_ledger`: re-derive every hash, root, link, signature and balance."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from bank.verification import verify_ledger


class Command(BaseCommand):
    help = "Verify the whole ledger; exits non-zero and names the first entry or block that fails."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar.")

    def handle(self, *args, **options):
        bar = None

        def progress(done, total):
            nonlocal bar
            if bar is None:
                bar = tqdm(
                    total=total, unit="entry", desc="verifying", file=self.stderr._out, disable=options["no_progress"]
                )
            bar.update(done - bar.n)

        report = verify_ledger(progress=progress)
        if bar is not None:
            bar.close()
        summary = (
            f"{report.entries} entries ({report.unsealed} not yet sealed), "
            f"{report.documents} notarized documents ({report.unsealed_documents} not yet sealed), "
            f"{report.blocks} blocks, {report.accounts} accounts"
        )
        if not report.ok:
            for failure in report.failures:
                self.stderr.write(f"  {failure}")
            raise CommandError(f"Ledger verification FAILED at {report.first_failure}. Checked {summary}.")
        self.stdout.write(self.style.SUCCESS(f"Ledger verified: {summary}."))
