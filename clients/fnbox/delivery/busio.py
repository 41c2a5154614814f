"""The few bus calls the pipeline makes, in one place (fnbox.bus interface)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from fnbox.bus import Bus, Delivery

__all__ = ["Outgoing", "publish_all", "publish_topics"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish; ``dedup_id`` makes a republish of it a no-op."""

    data: bytes
    headers: dict[str, str]
    dedup_id: str


async def publish_all(
    bus: Bus, topic: str, messages: Sequence[Outgoing], acked: Sequence[Delivery] = ()
) -> None:
    """Publish ``messages`` to ``topic``, then ack ``acked``; returns once all are durable and
    settled (:meth:`fnbox.bus.Bus.publish_and_ack`: one SQLite transaction)."""
    items = [(m.data, m.headers, m.dedup_id) for m in messages]
    if acked:
        await bus.publish_and_ack(topic, items, acked)
    elif items:
        await bus.publish_many(topic, items)


Publish = Callable[[Bus, str, Sequence[Outgoing], Sequence[Delivery]], Awaitable[None]]


async def publish_topics(
    bus: Bus,
    by_topic: Mapping[str, Sequence[Outgoing]],
    publish: Publish = publish_all,
    *,
    acked: Sequence[Delivery] = (),
) -> None:
    """Publish every topic's messages with ``publish`` (e.g. the traced
    :func:`fnbox.telemetry.messaging.publish_all`), then ack ``acked`` (the messages they were
    made from); returns once all are durable, raises if one is not (then nothing is acked and
    a redelivery republishes, deduplicated)."""
    if not by_topic:
        if acked:
            await bus.ack_many(acked)
        return
    if len(by_topic) == 1:  # the usual case: no task, and the acks go with the messages
        for topic, messages in by_topic.items():
            await publish(bus, topic, messages, acked)
        return
    # Started in one loop turn, the topics' inserts share one SQLite commit.
    results = await asyncio.gather(
        *(publish(bus, topic, messages, ()) for topic, messages in by_topic.items()),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    if acked:
        await bus.ack_many(acked)
