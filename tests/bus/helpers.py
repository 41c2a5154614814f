"""Polling helpers for the bus tests (deadlines, never bare sleeps)."""

from __future__ import annotations

import asyncio

from fnbox.bus import Bus, Delivery


async def take(
    bus: Bus,
    topic: str,
    group: str,
    count: int,
    *,
    lease: float = 30.0,
    batch: int = 100,
    within: float = 10.0,
    ack: bool = False,
) -> list[Delivery]:
    """Consume until ``count`` deliveries arrived; fail if they did not within ``within`` s.
    ``ack``: settle each as it arrives, before its lease can run out while the rest are
    awaited (on JetStream a lease is the consumer's ack_wait, counted from each delivery)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    got: list[Delivery] = []
    while len(got) < count:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"got {len(got)} of {count} messages within {within}s")
        batch_got = await bus.consume(
            topic, group, batch=min(batch, count - len(got)), wait=min(remaining, 1.0), lease=lease
        )
        if ack:
            for delivery in batch_got:
                await delivery.ack()
        got += batch_got
    return got


async def nothing_within(
    bus: Bus, topic: str, group: str, seconds: float, *, lease: float = 30.0
) -> bool:
    """True if no message of ``topic`` reaches ``group`` during ``seconds``. Pass the lease the
    test uses: on JetStream it is the consumer's ack_wait, applying to every pending message."""
    return not await bus.consume(topic, group, batch=10, wait=seconds, lease=lease)
