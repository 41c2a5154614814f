"""Stopping the pipeline's tasks: a cancellation that a library swallowed is repeated."""

from __future__ import annotations

import asyncio

from fnbox.delivery.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def consumer_loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                # What Python 3.11's asyncio.wait_for does when the awaited message arrives
                # in the same iteration as the cancellation: return it, and the loop goes on.
                swallowed += 1

    failing = asyncio.create_task(asyncio.sleep(10))
    task = asyncio.create_task(consumer_loop())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait([task, failing], every=0.05)
    assert task.cancelled() and failing.cancelled() and swallowed == 1
