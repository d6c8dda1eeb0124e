"""Threads that really race on PostgreSQL: each on its own connection, released together."""

import threading
from collections.abc import Callable

from django.db import connection


def race(workers: int, work: Callable[[int], object], timeout: float = 30) -> list[tuple[str, object]]:
    """Run work(0..workers-1) on threads that start together. Returns ("ok", result) or
    ("error", exception) per worker; a worker that did not finish fails the test."""
    barrier = threading.Barrier(workers)
    outcomes: list[tuple[str, object] | None] = [None] * workers

    def run(index: int) -> None:
        try:
            connection.ensure_connection()  # connect first, so the barrier releases them into the work itself
            barrier.wait(timeout=timeout)
            outcomes[index] = ("ok", work(index))
        except BaseException as error:  # noqa: B036 - the test reports whatever a worker raised
            outcomes[index] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,), name=f"racer-{index}") for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not any(thread.is_alive() for thread in threads), "a worker hung (deadlock or lock wait?)"
    return outcomes
