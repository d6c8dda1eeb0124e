"""The daily (or staff) batch: every merchant's BKRW received on a Seoul business
day, settled a chunk per transaction; safe to run again, retried, or on two workers."""

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from bank.services import record_audit
from bank.services.controls import require_role
from voucher import errors
from voucher.clock import day_bounds, seoul_today
from voucher.models import SettlementBatch
from voucher.rules.fees import fee_schedule, tiers_in_force
from voucher.services.settlement.chunk import refresh_totals
from voucher.services.settlement.sql import merchant_ranges
from voucher.services.settlement.workers import settle_ranges

logger = logging.getLogger(__name__)

RUN_PERMISSION = "voucher.run_settlement"


def settle_day(*, day: date, acting_user=None, progress: Callable[[int, int], None] | None = None) -> SettlementBatch:
    """Settle every merchant's BKRW received on Seoul business `day` (and anything
    older still unsettled). Safe to run again, retried, or on two workers at once:
    a second run resumes the same batch and settles only merchants without a line.

    `acting_user` (staff) marks a run started by hand; `progress(done, total)` is
    called after each chunk.
    """
    if not isinstance(day, date) or isinstance(day, datetime):
        raise errors.InvalidRequest("day must be a date.", field="day")
    if day >= seoul_today():
        raise errors.InvalidRequest("Only a finished business day can be settled.", field="day")
    if acting_user is not None:  # beat and the task run it as nobody; a person needs the role
        require_role(acting_user, RUN_PERMISSION)
    _check_schedule_covers(day)
    batch = _daily_batch(day, acting_user)
    if batch.status == SettlementBatch.Status.DONE:
        return batch
    # The merchants in id ranges of VOUCHER_SETTLEMENT_CHUNK; each range is looked
    # through once. A payment from before the cutoff that commits only after its
    # range was looked through (a straggler) is above its merchant's watermark,
    # so the next day's batch settles it; nothing is lost or paid twice.
    ranges = merchant_ranges(max(1, settings.VOUCHER_SETTLEMENT_CHUNK))
    total, done = sum(count for _, _, count in ranges), 0
    logger.info("settlement %s: %d merchants to look through", batch, total)
    with _collector_on_new_objects_only():
        for checked in settle_ranges(batch, ranges):
            done += checked
            if progress:
                progress(done, total)
            logger.info("settlement %s: %d of %d merchants looked through", batch, done, total)
    with transaction.atomic():
        batch = SettlementBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != SettlementBatch.Status.DONE:
            batch.status = SettlementBatch.Status.DONE
            batch.finished_at = timezone.now()
            batch.save(update_fields=["status", "finished_at"])
            refresh_totals(batch)
            batch.refresh_from_db()
            if acting_user is not None:
                record_audit(
                    actor=acting_user,
                    action="voucher.settle_day",
                    target=batch,
                    after={"period": str(day), "paid": batch.paid_count, "held": batch.held_count, "net": batch.net},
                )
    return batch


@contextmanager
def _collector_on_new_objects_only() -> Iterator[None]:
    """While settling, Python's cycle collector looks only at objects made since it
    began. The rows and drafts a batch makes add up to a full collection, which then
    walks everything Django and the process have loaded (about 25 ms of a 0.45 s
    1M-payment batch); gc.freeze sets those aside until gc.unfreeze gives them back."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _check_schedule_covers(day: date) -> None:
    tiers_in_force(day, fee_schedule())


def _daily_batch(day: date, acting_user) -> SettlementBatch:
    existing = SettlementBatch.objects.exclude(kind=SettlementBatch.Kind.INSTANT).filter(period=day).first()
    if existing:
        return existing
    kind = SettlementBatch.Kind.STAFF if acting_user is not None else SettlementBatch.Kind.DAILY
    try:
        with transaction.atomic():
            return SettlementBatch.objects.create(
                period=day, kind=kind, cutoff=day_bounds(day)[1], requested_by=acting_user
            )
    except IntegrityError:  # another worker created it first: resume theirs
        return SettlementBatch.objects.exclude(kind=SettlementBatch.Kind.INSTANT).get(period=day)
