"""The few bus calls the pipeline makes, in one place (fnbox.bus interface)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from fnbox.bus import Bus

__all__ = ["Outgoing", "publish_all", "publish_topics"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish; ``dedup_id`` makes a republish of it a no-op."""

    data: bytes
    headers: dict[str, str]
    dedup_id: str


async def publish_all(bus: Bus, topic: str, messages: Sequence[Outgoing]) -> None:
    """Publish ``messages`` to ``topic``; returns once all are durable."""
    if not messages:
        return
    await bus.publish_many(topic, [(m.data, m.headers, m.dedup_id) for m in messages])


Publish = Callable[[Bus, str, Sequence[Outgoing]], Awaitable[None]]


async def publish_topics(
    bus: Bus, by_topic: Mapping[str, Sequence[Outgoing]], publish: Publish = publish_all
) -> None:
    """Publish every topic's messages with ``publish`` (e.g. the traced
    :func:`fnbox.telemetry.messaging.publish_all`); returns once all are durable, raises if
    one is not (then the caller settles nothing and a redelivery republishes, deduplicated)."""
    if len(by_topic) <= 1:  # the usual case, without a task per topic
        for topic, messages in by_topic.items():
            await publish(bus, topic, messages)
        return
    # Started in one loop turn, the topics' inserts share one SQLite commit.
    results = await asyncio.gather(
        *(publish(bus, topic, messages) for topic, messages in by_topic.items()),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
