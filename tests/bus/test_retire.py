"""Retiring a group's use of a drained topic: refused while anything is pending, never losing a
message published meanwhile, and the topic comes back with the next publish."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import nats.js.errors
import pytest
from fnbox.bus import Bus
from fnbox.bus.jetstream import JetStreamBus
from fnbox.bus.names import consumer_name
from fnbox.bus.sqlite import SqliteBus, SqliteOptions

from tests.bus.conftest import NATS_URL, BusTarget
from tests.bus.helpers import nothing_within, take
from tests.support.polling import eventually

TOPIC = "deliveries.gone"


async def _retires(bus: Bus, topic: str = TOPIC, group: str = "g") -> bool:
    return await bus.retire(topic, group)


async def _drain(bus: Bus, count: int, topic: str = TOPIC, group: str = "g") -> None:
    await bus.ack_many(await take(bus, topic, group, count))


async def test_retire_is_refused_while_anything_is_pending_or_leased(bus: Bus) -> None:
    await bus.publish_many(TOPIC, [(b"1", None, None), (b"2", None, None)])
    assert not await bus.retire(TOPIC, "g")  # never consumed: both wait for the group
    leased = await take(bus, TOPIC, "g", 2)
    assert not await bus.retire(TOPIC, "g")
    await leased[0].ack()
    await eventually(lambda: _pending_is(bus, 1), what="the first ack")
    assert not await bus.retire(TOPIC, "g")  # one still leased
    assert await bus.pending(TOPIC, "g") == 1  # refusals changed nothing
    await leased[1].ack()
    await eventually(lambda: _retires(bus), what="a retirement")
    assert await bus.topics("deliveries.") == []
    assert await bus.pending(TOPIC, "g") == 0
    assert await bus.retire(TOPIC, "g")  # nothing left to retire


async def test_a_publish_after_retiring_recreates_the_topic_for_a_new_consumer(bus: Bus) -> None:
    await bus.publish(TOPIC, b"old", dedup_id="d1")
    await _drain(bus, 1)
    await eventually(lambda: _retires(bus), what="a retirement")
    new_id = await bus.publish(TOPIC, b"new")
    assert await bus.topics("deliveries.") == [TOPIC]
    got = await take(bus, TOPIC, "g", 1)
    assert [(d.message.id, d.message.data) for d in got] == [(new_id, b"new")]
    await got[0].ack()
    assert await nothing_within(bus, TOPIC, "g", 0.3)


async def test_retire_is_refused_while_another_group_uses_the_topic(bus: Bus) -> None:
    await bus.publish(TOPIC, b"1")
    await _drain(bus, 1, group="a")
    await _drain(bus, 1, group="b")
    assert await bus.pending(TOPIC, "a") == 0
    assert not await bus.retire(TOPIC, "a")
    assert await bus.topics("deliveries.") == [TOPIC]
    assert await nothing_within(bus, TOPIC, "a", 0.2)  # a's progress survived


async def test_a_publish_racing_a_retirement_is_delivered(bus: Bus) -> None:
    await bus.publish(TOPIC, b"old")
    await _drain(bus, 1)
    await eventually(lambda: _pending_is(bus, 0), what="the ack")
    retired, new_id = await asyncio.gather(bus.retire(TOPIC, "g"), bus.publish(TOPIC, b"new"))
    got = await take(bus, TOPIC, "g", 1)
    assert [(d.message.id, d.message.data) for d in got] == [(new_id, b"new")], retired
    await got[0].ack()
    assert await nothing_within(bus, TOPIC, "g", 0.3)


async def test_another_client_of_the_group_follows_the_topic_once_recreated(
    bus: Bus, bus_target: BusTarget
) -> None:
    """A second client (another process) consumed the topic before this one retired it and a
    publish recreated it: the second client's own retirement is refused (the new message waits)
    and its next consume reads the recreated topic, not the retired one."""
    await bus.publish(TOPIC, b"old")
    async with bus_target.open() as other:
        await _drain(other, 1)
        await eventually(lambda: _retires(bus), what="a retirement")
        # On SQLite a new topic may take the retired topic's id: it is not ours to read.
        await bus.publish("deliveries.another", b"not yours")
        new_id = await bus.publish(TOPIC, b"new")
        assert not await other.retire(TOPIC, "g")
        got = await take(other, TOPIC, "g", 1)
        assert [(d.message.id, d.message.data) for d in got] == [(new_id, b"new")]
        await got[0].ack()
        assert await nothing_within(other, TOPIC, "g", 0.3)


async def test_sqlite_consumers_elsewhere_notice_a_retired_topic_id(tmp_path: Path) -> None:
    """On SQLite another process's consumer finds its topic id stale at its next probe, even
    when the topic's id went to another topic meanwhile."""
    async with _sqlite(tmp_path) as bus, _sqlite(tmp_path) as other:
        await bus.publish(TOPIC, b"old")
        await _drain(other, 1)
        assert await bus.retire(TOPIC, "g")
        await bus.publish("deliveries.another", b"not yours")  # the highest id: reused
        new_id = await bus.publish(TOPIC, b"new")
        got = await take(other, TOPIC, "g", 1)
        assert [(d.message.id, d.message.data) for d in got] == [(new_id, b"new")]
        await got[0].ack()
        assert await nothing_within(other, TOPIC, "g", 0.3)


async def test_jetstream_retire_deletes_the_consumer_and_keeps_later_messages(
    bus_target: BusTarget,
) -> None:
    """A message published between the consumer's last look and the purge survives it."""
    if bus_target.kind != "nats":
        pytest.skip("JetStream only")
    racing = _PublishingBeforePurge([NATS_URL], namespace=bus_target.namespace)
    async with racing:
        await racing.publish(TOPIC, b"old")
        await _drain(racing, 1)
        assert await eventually_retired(racing)
        js = racing._jetstream()
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.consumer_info(racing.stream, consumer_name("g", TOPIC))
        assert racing.meanwhile is not None
        assert await racing.topics("deliveries.") == [TOPIC]
        got = await take(racing, TOPIC, "g", 1)
        assert [(d.message.id, d.message.data) for d in got] == [(racing.meanwhile, b"meanwhile")]


async def test_sqlite_retire_deletes_every_row_of_the_topic(tmp_path: Path) -> None:
    async with _sqlite(tmp_path) as bus:
        await bus.publish_many(TOPIC, [(b"%d" % n, None, f"d{n}") for n in range(3)])
        await bus.publish("deliveries.kept", b"k", dedup_id="k")
        await _drain(bus, 3)
        assert await bus.retire(TOPIC, "g")
    with sqlite3.connect(tmp_path / "bus.db") as conn:
        left = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("topics", "messages", "dedup", "groups", "leases")
        }
    assert left == {"topics": 1, "messages": 1, "dedup": 1, "groups": 0, "leases": 0}


def _sqlite(tmp_path: Path) -> SqliteBus:
    options = SqliteOptions(poll_interval=0.02, compact_interval=3600)
    return SqliteBus(str(tmp_path / "bus.db"), namespace="t", options=options)


class _PublishingBeforePurge(JetStreamBus):
    """Publishes one message to the topic after the consumer's info was read, before the purge
    (where another publisher's message could land)."""

    meanwhile: str | None = None

    async def _shared(self, subject: str, durable: str) -> bool:
        if self.meanwhile is None:
            self.meanwhile = await self.publish(TOPIC, b"meanwhile")
        return await super()._shared(subject, durable)


async def eventually_retired(bus: Bus) -> bool:
    await eventually(lambda: _retires(bus), what="a retirement")
    return True


async def _pending_is(bus: Bus, expected: int) -> bool:
    return await bus.pending(TOPIC, "g") == expected
