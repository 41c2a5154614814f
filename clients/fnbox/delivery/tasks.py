"""Stopping asyncio tasks for good."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


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
