"""Publish, consume, ack; what a message carries; topics, pending and namespaces."""

from __future__ import annotations

import asyncio
import time

import pytest
from fnbox.bus import Bus, BusClosed, BusError, InvalidName

from tests.bus.conftest import BusTarget
from tests.bus.helpers import nothing_within, take
from tests.support.polling import eventually


async def test_published_messages_are_consumed_in_order_with_their_headers(bus: Bus) -> None:
    before = time.time()
    ids = [
        await bus.publish(
            "events.src1", b'{"n":%d}' % n, {"messageId": f"m{n}", "traceparent": "t"}
        )
        for n in range(3)
    ]
    got = await take(bus, "events.src1", "router", 3)
    assert [d.message.id for d in got] == ids
    assert [d.message.data for d in got] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert got[1].message.headers == {"messageId": "m1", "traceparent": "t"}
    assert {d.message.topic for d in got} == {"events.src1"}
    assert {d.message.attempt for d in got} == {1}
    assert all(before - 1 <= d.message.published_at <= time.time() + 1 for d in got)
    assert len(set(ids)) == 3


async def test_acked_messages_are_not_delivered_again(bus: Bus) -> None:
    await bus.publish("events.a", b"1")
    await bus.publish("events.a", b"2")
    first = await take(bus, "events.a", "g", 2, lease=0.3)
    for delivery in first:
        await delivery.ack()
    await delivery.ack()  # settling twice is harmless
    assert await nothing_within(bus, "events.a", "g", 1.0, lease=0.3)  # > the lease
    await eventually(lambda: _pending_is(bus, "events.a", "g", 0))


async def test_ack_many_settles_every_delivery(bus: Bus) -> None:
    await bus.publish_many("events.am", [(b"%d" % n, None, None) for n in range(4)])
    got = await take(bus, "events.am", "g", 4, lease=0.3)
    await bus.ack_many(got[:3])
    await bus.ack_many(got[:3])  # settling twice is harmless
    await got[3].ack()
    assert await nothing_within(bus, "events.am", "g", 1.0, lease=0.3)  # > the lease
    await eventually(lambda: _pending_is(bus, "events.am", "g", 0))


async def test_publish_and_ack_stores_the_messages_and_settles_the_deliveries(bus: Bus) -> None:
    await bus.publish_many("webhooks.pa", [(b"%d" % n, None, None) for n in range(3)])
    got = await take(bus, "webhooks.pa", "g", 3, lease=0.3)
    items = [(b"e0", {"k": "v"}, "e-0"), (b"e1", None, "e-1")]
    ids = await bus.publish_and_ack("events.pa", items, got[:2])
    assert len(ids) == 2
    assert await bus.publish_and_ack("events.pa", items, got[:2]) == ids  # deduplicated
    assert await bus.publish_and_ack("events.pa", [], got[2:]) == []  # nothing to publish
    events = await take(bus, "events.pa", "g", 2)
    assert [d.message.id for d in events] == ids
    assert [d.message.data for d in events] == [b"e0", b"e1"]
    assert events[0].message.headers == {"k": "v"}
    assert await nothing_within(bus, "webhooks.pa", "g", 1.0, lease=0.3)  # > the lease
    await eventually(lambda: _pending_is(bus, "webhooks.pa", "g", 0))


async def test_message_without_headers_has_empty_headers(bus: Bus) -> None:
    await bus.publish("events.a", b"{}")
    (got,) = await take(bus, "events.a", "g", 1)
    assert got.message.headers == {}


async def test_consume_returns_empty_after_wait_when_nothing_comes(bus: Bus) -> None:
    started = time.monotonic()
    assert await bus.consume("events.none", "g", batch=5, wait=0.3, lease=5) == []
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize("publisher", ["same client", "other client"])
async def test_waiting_consumer_wakes_up_on_publish(
    bus: Bus, bus_target: BusTarget, publisher: str
) -> None:
    waiting = asyncio.create_task(bus.consume("events.w", "g", batch=5, wait=10, lease=5))
    # Give the consumer time to start waiting (the test passes either way; this makes it
    # exercise the wake-up rather than an immediate hit).
    await asyncio.sleep(0.1)
    started = time.monotonic()
    if publisher == "same client":
        await bus.publish("events.w", b"x")
    else:
        async with bus_target.open() as other:
            await other.publish("events.w", b"x")
    got = await waiting
    assert [d.message.data for d in got] == [b"x"]
    assert time.monotonic() - started < 5  # well before the 10 s wait ran out


async def test_batch_limits_how_many_come_at_once(bus: Bus) -> None:
    await bus.publish_many("events.b", [(b"%d" % n, None, None) for n in range(7)])
    got = await bus.consume("events.b", "g", batch=3, wait=2, lease=30)
    assert 1 <= len(got) <= 3
    rest = await take(bus, "events.b", "g", 7 - len(got))
    assert sorted(d.message.data for d in got + rest) == [b"%d" % n for n in range(7)]


async def test_topics_lists_topics_by_prefix(bus: Bus) -> None:
    await bus.publish("deliveries.dest_1", b"1")
    await bus.publish("deliveries.dest-2", b"2")
    await bus.publish("deliveriesx.other", b"3")
    await bus.publish("events.src", b"4")
    assert await bus.topics("deliveries.") == ["deliveries.dest-2", "deliveries.dest_1"]
    assert await bus.topics("deliveries") == [
        "deliveries.dest-2",
        "deliveries.dest_1",
        "deliveriesx.other",
    ]
    assert await bus.topics("nothing.") == []
    assert len(await bus.topics("")) == 4


async def test_pending_counts_unsettled_messages_of_a_group(bus: Bus) -> None:
    await bus.publish_many("events.p", [(b"%d" % n, None, None) for n in range(5)])
    assert await bus.pending("events.p", "g") == 5  # a group that never consumed
    leased = await take(bus, "events.p", "g", 2, batch=2)
    assert await bus.pending("events.p", "g") == 5  # leased is still pending
    for delivery in leased:
        await delivery.ack()
    await eventually(lambda: _pending_is(bus, "events.p", "g", 3))
    assert await bus.pending("events.p", "other") == 5
    assert await bus.pending("events.unknown", "g") == 0


async def test_namespaces_do_not_see_each_other(bus: Bus, bus_target: BusTarget) -> None:
    await bus.publish("events.ns", b"mine")
    async with bus_target.open(namespace=f"{bus_target.namespace}_other") as other:
        try:
            assert await other.topics("") == []
            assert await other.pending("events.ns", "g") == 0
            assert await nothing_within(other, "events.ns", "g", 0.2)
        finally:
            delete = getattr(other, "delete_namespace", None)
            if delete is not None:
                await delete()


@pytest.mark.parametrize("topic", ["", "events.", ".x", "a..b", "a.*", "a.>", "a b", "é"])
async def test_invalid_topics_are_refused(bus: Bus, topic: str) -> None:
    with pytest.raises(InvalidName):
        await bus.publish(topic, b"{}")


async def test_invalid_groups_are_refused(bus: Bus) -> None:
    with pytest.raises(InvalidName):
        await bus.consume("events.a", "a.b", batch=1, wait=0, lease=1)


async def _pending_is(bus: Bus, topic: str, group: str, expected: int) -> bool:
    return await bus.pending(topic, group) == expected


async def test_closing_ends_a_waiting_consume(bus_target: BusTarget) -> None:
    bus = bus_target.open()
    await bus.start()
    waiting = asyncio.create_task(bus.consume("events.c", "g", batch=1, wait=30, lease=5))
    await asyncio.sleep(0.1)  # let it start waiting (the test holds either way)
    await bus.close()
    started = time.monotonic()
    with pytest.raises(BusError):
        await asyncio.wait_for(waiting, 10)
    assert time.monotonic() - started < 5
    with pytest.raises(BusClosed):
        await bus.publish("events.c", b"x")
