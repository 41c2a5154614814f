"""The pipeline's tasks: a cancellation that a library swallowed is repeated; a consumer
loop's slots."""

from __future__ import annotations

import asyncio

from fnbox.delivery.tasks import Slots, cancel_and_wait


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


async def test_slots_wait_for_a_free_one_and_for_a_quarter_while_busy() -> None:
    slots = Slots(8)
    slots.take(8)
    waiting = asyncio.create_task(slots.any_free())
    await asyncio.sleep(0)
    assert not waiting.done()  # all taken
    slots.release()
    async with asyncio.timeout(5):
        await waiting
    assert slots.free == 1
    # One free of eight: a refill waits until two (a quarter) are free...
    refill = asyncio.create_task(slots.refilled())
    await asyncio.sleep(0)
    assert not refill.done()
    slots.release()
    async with asyncio.timeout(5):
        await refill
    assert slots.free == 2
    # ...and returns at once when a quarter is free, or nothing is busy.
    async with asyncio.timeout(5):
        await slots.refilled()
        slots.release(6)
        await slots.refilled()
    assert slots.busy == 0
