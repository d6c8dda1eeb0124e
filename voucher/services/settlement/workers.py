"""The threads that settle a batch's chunks side by side on PostgreSQL, each on
its own connection."""

import queue
import threading
from collections.abc import Iterator

from django.conf import settings
from django.db import connection, connections

from voucher.models import SettlementBatch
from voucher.services.settlement.chunk import House, settle_range


def settle_ranges(batch: SettlementBatch, ranges: list[tuple[int, int, int]]) -> Iterator[int]:
    """Settle the merchants of each range that have something to settle, a range
    per transaction; yields each range's merchant count as ranges finish.

    On PostgreSQL, outside a caller's transaction, VOUCHER_SETTLEMENT_WORKERS
    threads (this one and helpers) settle chunks side by side, each on its own
    connection: a chunk locks only its own merchants until its house accounts
    are written, last (bank's deferred_balances), so chunks overlap but for
    those last milliseconds.
    Inside a caller's transaction (whose rows another connection cannot see), or
    on SQLite, chunks run one after the other on this connection."""
    house = House.find()
    workers = min(settings.VOUCHER_SETTLEMENT_WORKERS, len(ranges))
    if workers <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for first, last, count in ranges:
            settle_range(batch, first, last, house)
            yield count
        return
    work: queue.SimpleQueue = queue.SimpleQueue()
    for merchant_range in ranges:
        work.put(merchant_range)
    finished: queue.SimpleQueue = queue.SimpleQueue()  # other workers' counts; None when one stops
    stop = threading.Event()  # a worker failed, or the caller stopped listening
    failures: list[BaseException] = []

    def settle_next() -> int | None:
        """Settle the next range; its merchant count, or None when none is left or the workers stop."""
        if stop.is_set():
            return None
        try:
            first, last, count = work.get_nowait()
        except queue.Empty:
            return None
        try:
            settle_range(batch, first, last, house)
        except BaseException as error:  # raised in this (the caller's) thread once every worker stopped
            failures.append(error)
            stop.set()
            return None
        return count

    def help_settle() -> None:
        try:
            while (count := settle_next()) is not None:
                finished.put(count)
        finally:
            connections.close_all()  # this thread's own connection
            finished.put(None)

    helpers = [threading.Thread(target=help_settle, name=f"settle-{batch.pk}-{n}") for n in range(1, workers)]
    for thread in helpers:
        thread.start()
    running = len(helpers)

    def helpers_finished(wait: bool) -> Iterator[int]:
        nonlocal running
        while running:
            try:
                settled = finished.get(block=wait)
            except queue.Empty:
                return
            if settled is None:
                running -= 1
            elif not stop.is_set():
                yield settled

    try:
        # This thread settles too, on the connection it has open already (a new
        # one starts with cold caches: its first chunk took a third longer).
        while (count := settle_next()) is not None:
            yield count
            yield from helpers_finished(wait=False)
        yield from helpers_finished(wait=True)
    finally:  # also when the caller stops listening: no helper goes on by itself
        stop.set()
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]
