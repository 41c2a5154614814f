"""Stopping asyncio tasks for good, and the concurrency slots of a consumer loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["Slots", "cancel_and_wait"]

# How long a busy consumer waits for a quarter of its slots to free up before it fetches for
# the ones free now (so a few stuck invocations never hold back the others for long).
REFILL_WAIT = 0.005


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, every: float = 0.1) -> None:
    """Cancel ``tasks`` and return once every one has ended (their errors are dropped).

    A cancellation can be lost: Python 3.11's ``asyncio.wait_for``, which nats-py uses to wait
    for the next message, returns the result instead of raising when the message arrives in
    the same loop iteration as the cancellation, and the consumer loop goes on. So a task
    still running after ``every`` seconds is cancelled again (without this, a stopping
    process could hang until it was killed).
    """
    every_task = list(tasks)
    pending = {task for task in every_task if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
    for task in every_task:
        if not task.cancelled():
            task.exception()  # retrieved: a failure while stopping is not worth a warning


class Slots:
    """A consumer loop's ``limit`` concurrency slots: :meth:`take` them for work, and
    :meth:`release` them when it ends. While busy the loop fetches again only once a quarter
    of them are free (one bus lease then serves several rounds) or after :data:`REFILL_WAIT`
    (:meth:`refilled`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy = 0
        self._refill = max(1, limit // 4)
        self._freed = asyncio.Event()

    @property
    def free(self) -> int:
        return self.limit - self.busy

    def take(self, n: int = 1) -> None:
        self.busy += n

    def release(self, n: int = 1) -> None:
        self.busy -= n
        self._freed.set()

    async def any_free(self) -> None:
        """Return once a slot is free."""
        while self.busy >= self.limit:
            await self._next_release()

    async def refilled(self) -> None:
        """Return once nothing is busy or a quarter of the slots are free, or after
        :data:`REFILL_WAIT`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REFILL_WAIT):
                while self.busy and self.free < self._refill:
                    await self._next_release()

    async def _next_release(self) -> None:
        self._freed.clear()
        await self._freed.wait()
