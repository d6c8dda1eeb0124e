"""Celery tasks of the ledger: thin, idempotent wrappers around bank.services."""

from celery import shared_task

from bank import services


@shared_task
def seal_blocks() -> list[int]:
    """Seal every committed, unsealed entry. Two workers at once take turns on the chain row."""
    return [block.height for block in services.seal_pending_entries()]


@shared_task
def expire_holds() -> int:
    return services.expire_holds()


@shared_task
def forget_old_nonces() -> int:
    return services.forget_old_nonces()


@shared_task
def forget_old_payload_nonces() -> int:
    return services.forget_old_payload_nonces()


@shared_task
def run_verification(run_id: int) -> str:
    """Verify the ledger for a run queued from the back office; returns its verdict."""
    return services.run_verification(run=run_id).status
