"""Celery tasks of the token: thin, idempotent wrappers around voucher.services."""

from datetime import date

from celery import shared_task

from voucher import services


@shared_task
def expire_lots() -> int:
    """Sweep expired lots to their funders. Two workers at once split the lots (SKIP LOCKED)."""
    return services.expire_lots().lots


@shared_task
def flag_fraud_patterns(day: str | None = None) -> int:
    """The nightly fraud rules over the window ending yesterday (or `day`, ISO). Idempotent."""
    return len(services.flag_fraud_patterns(day=date.fromisoformat(day) if day else None))
