"""The few bus calls the pipeline makes, in one place (fnbox.bus interface)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fnbox.bus import Bus

__all__ = ["Outgoing", "publish_all"]


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
