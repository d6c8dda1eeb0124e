"""Celery tasks of the token: thin, idempotent wrappers around voucher.services."""

from celery import shared_task

from voucher import services


@shared_task
def expire_lots() -> int:
    """Sweep expired lots to their funders. Two workers at once split the lots (SKIP LOCKED)."""
    return services.expire_lots().lots
