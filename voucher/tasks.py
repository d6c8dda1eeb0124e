"""Celery tasks of the token: thin, idempotent wrappers around voucher.services."""

import logging
from datetime import date, timedelta

from celery import shared_task

from voucher import services
from voucher.clock import seoul_today

logger = logging.getLogger(__name__)


@shared_task
def expire_lots() -> int:
    """Sweep expired lots to their funders. Two workers at once split the lots (SKIP LOCKED)."""
    return services.expire_lots().lots


@shared_task
def expire_wallet_holds() -> int:
    """Release the wallet holds past their expiry. Two workers at once split them (SKIP LOCKED)."""
    return services.expire_wallet_holds()


@shared_task
def settle_yesterday() -> dict:
    """Settle yesterday (Seoul). Run by beat after midnight; a retry, a second
    worker or a re-run after a crash resumes the same batch and pays no one twice."""
    return settle_day_task(day=(seoul_today() - timedelta(days=1)).isoformat())


@shared_task
def settle_day_task(day: str) -> dict:
    """Settle one Seoul business day given as YYYY-MM-DD (a catch-up after an outage)."""
    batch = services.settle_day(
        day=date.fromisoformat(day),
        progress=lambda done, total: logger.info("settling %s: %d of %d merchants", day, done, total),
    )
    return {"batch": batch.pk, "status": batch.status, "paid": batch.paid_count, "held": batch.held_count}


@shared_task
def flag_fraud_patterns(day: str | None = None) -> int:
    """The nightly fraud rules over the window ending yesterday (or `day`, ISO). Idempotent."""
    return len(services.flag_fraud_patterns(day=date.fromisoformat(day) if day else None))
