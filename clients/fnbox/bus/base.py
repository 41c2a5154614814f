"""The bus interface: durable topics, consumer groups, leased deliveries.

Semantics shared by every backend (the tests in ``tests/bus`` hold both to them):

- ``publish`` returns once the message is durable (fsync'd SQLite commit, JetStream PubAck).
  The id it returns is the message's sequence, unique within the bus namespace.
- A *group* is a named cursor over one topic. Every group sees every message still retained on
  the topic (a group created late starts at the oldest retained message); within a group each
  message is leased to one consumer at a time.
- A leased message that is neither acked nor termed comes back once its lease expires (crash
  safety), with ``attempt`` one higher; ``nak(delay)`` brings it back after ``delay`` seconds.
  Delivery is therefore at-least-once: consumers must be idempotent. Use one lease per group
  and topic (on JetStream the lease is the consumer's ``ack_wait``, shared by its messages), and
  do not nak a delivery whose lease has expired (JetStream would apply the late nak to the
  message's current holder; SQLite ignores it). A late ack is harmless: the work was done.
- ``close`` ends consumers waiting in ``consume`` with a ``BusError``.
- ``dedup_id``: publishing the same id to the same topic again within the dedup window stores
  nothing and returns the first message's id.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = ["Bus", "Delivery", "Message", "PublishItem"]

PublishItem = tuple[bytes, Mapping[str, str] | None, str | None]
"""One message for :meth:`Bus.publish_many`: ``(data, headers, dedup_id)``."""


@dataclass(frozen=True, slots=True)
class Message:
    """One stored message as a consumer sees it."""

    id: str
    """Bus-assigned sequence (decimal string), unique within the namespace."""
    topic: str
    data: bytes
    """The payload exactly as published (JSON bytes by convention; the bus never decodes it)."""
    headers: dict[str, str]
    attempt: int
    """1 on first delivery, +1 per redelivery (nak or lease expiry)."""
    published_at: float
    """Seconds since the epoch when the bus stored the message."""


class Delivery(abc.ABC):
    """One leased message. Settle it exactly once with :meth:`ack`, :meth:`nak` or :meth:`term`;
    calls after the first settlement are ignored."""

    message: Message

    @abc.abstractmethod
    async def ack(self) -> None:
        """Done: the message is never delivered to this group again."""

    @abc.abstractmethod
    async def nak(self, delay: float = 0) -> None:
        """Deliver it again (to any member of the group) after ``delay`` seconds."""

    @abc.abstractmethod
    async def term(self) -> None:
        """Give up: never delivered again (the caller records the dead letter)."""

    @abc.abstractmethod
    async def in_progress(self) -> None:
        """Still working on it: extend the lease by the consume call's ``lease``."""


class Bus(abc.ABC):
    """A durable message bus; see the module docstring for the guarantees.

    Use as ``async with open_bus(url) as bus:`` or call :meth:`start` / :meth:`close`.
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect / open storage and create what is missing. Raises ``BusUnavailable``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads; pending operations complete first."""

    @abc.abstractmethod
    async def publish(
        self,
        topic: str,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        dedup_id: str | None = None,
    ) -> str:
        """Store one message; returns its id once it is durable."""

    @abc.abstractmethod
    async def publish_many(self, topic: str, items: Sequence[PublishItem]) -> list[str]:
        """Store several messages on one topic at once (one commit, or pipelined acks); returns
        their ids in order once all are durable. On error some may have been stored: publish
        them again with the same ``dedup_id`` to be safe."""

    async def publish_and_ack(
        self, topic: str, items: Sequence[PublishItem], deliveries: Sequence[Delivery]
    ) -> list[str]:
        """Store ``items`` on ``topic`` (as :meth:`publish_many`), then ack ``deliveries``
        (consume, transform, produce): no delivery is acked before the messages are durable,
        and when this raises, some deliveries may be unacked (a redelivery republishes, with
        the same ``dedup_id``). SQLite does both in one transaction."""
        ids = await self.publish_many(topic, items) if items else []
        await self.ack_many(deliveries)
        return ids

    async def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Ack several deliveries of this bus at once (one write, where the backend can);
        returns once all are settled, like awaiting each one's :meth:`Delivery.ack`."""
        for delivery in deliveries:
            await delivery.ack()

    @abc.abstractmethod
    async def consume(
        self, topic: str, group: str, *, batch: int, wait: float, lease: float
    ) -> list[Delivery]:
        """Lease up to ``batch`` messages of ``topic`` for ``group``, waiting up to ``wait``
        seconds for the first one; returns ``[]`` when none came. Each is leased for ``lease``
        seconds: unsettled by then, it is delivered again."""

    @abc.abstractmethod
    async def topics(self, prefix: str) -> list[str]:
        """The topics holding messages whose names start with ``prefix`` (``"deliveries."``)."""

    @abc.abstractmethod
    async def pending(self, topic: str, group: str) -> int:
        """Messages of ``topic`` the group has not acked or termed yet (its backlog)."""

    @abc.abstractmethod
    async def retire(self, topic: str, group: str) -> bool:
        """End ``group``'s use of ``topic`` if it has nothing pending there (nothing unleased,
        nothing leased) and is the topic's only group: the topic's settled messages and the
        group's progress are deleted, so the topic is no longer listed by :meth:`topics`.
        Returns whether it retired (also when there was nothing to retire); when it did not,
        nothing changed. A message published meanwhile is never lost: it is either counted
        as pending (no retirement) or kept, and a later publish creates the topic again, for
        the group to read from its start. Other clients of the group (other processes) should
        call it too when their consumer of the topic stops: on JetStream a client keeps the
        deleted consumer until then (its consumes come back empty)."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
