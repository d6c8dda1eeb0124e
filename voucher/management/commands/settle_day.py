"""`manage.py settle_day --date YYYY-MM-DD`: settle one Seoul business day by hand (resumes a batch that stopped)."""

from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from bank.errors import BankError
from voucher import services
from voucher.clock import seoul_today
from voucher.selectors import batch_reconciliation


class Command(BaseCommand):
    help = "Settle every merchant for one Asia/Seoul business day (default: yesterday); safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="YYYY-MM-DD, Asia/Seoul (default: yesterday)")
        parser.add_argument("--no-progress", action="store_true", help="Do not show a progress bar.")

    def handle(self, *args, **options):
        try:
            day = date.fromisoformat(options["date"]) if options["date"] else seoul_today() - timedelta(days=1)
        except ValueError:
            raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}.") from None
        bar = None

        def progress(done, total):
            nonlocal bar
            if bar is None or bar.total != total:
                if bar is not None:
                    bar.close()
                bar = tqdm(
                    total=total,
                    unit="merchant",
                    desc=f"settling {day}",
                    file=self.stderr._out,
                    disable=options["no_progress"],
                )
            bar.update(done - bar.n)

        try:
            batch = services.settle_day(day=day, progress=progress)
        except BankError as error:
            raise CommandError(f"{error.code}: {error}") from None
        finally:
            if bar is not None:
                bar.close()
        report = batch_reconciliation(batch)
        self.stdout.write(
            f"Batch #{batch.pk} {batch.period} {batch.status}: {batch.paid_count} merchants paid, "
            f"{batch.held_count} held; {batch.payment_count} payments, gross {batch.gross:,}, refunds "
            f"{batch.refunds:,}, fees {batch.fees:,}, net {batch.net:,} won."
        )
        if not report["balanced"]:
            raise CommandError(f"Batch #{batch.pk} does not reconcile: {report}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Reconciled: net + fees {report['net_plus_fees']:,} == BKRW burned {report['bkrw_burned']:,} "
                f"== KRW out of the reserve {report['krw_out_of_reserve']:,}."
            )
        )
