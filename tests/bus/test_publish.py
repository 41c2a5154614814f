"""Publishing: batches, ids, deduplication."""

from __future__ import annotations

import asyncio

from fnbox.bus import Bus

from tests.bus.helpers import nothing_within, take


async def test_publish_many_returns_ids_in_order(bus: Bus) -> None:
    items = [(b'{"n":%d}' % n, {"i": str(n)}, None) for n in range(250)]
    ids = await bus.publish_many("events.many", items)
    assert len(ids) == 250
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert len(set(ids)) == 250
    got = await take(bus, "events.many", "g", 250)
    assert [d.message.id for d in got] == ids
    assert [d.message.data for d in got] == [data for data, _, _ in items]
    assert [d.message.headers["i"] for d in got] == [str(n) for n in range(250)]


async def test_publish_many_of_nothing_is_nothing(bus: Bus) -> None:
    assert await bus.publish_many("events.none", []) == []


async def test_dedup_id_stores_a_message_once(bus: Bus) -> None:
    first = await bus.publish("webhooks.s", b"a", {"h": "1"}, dedup_id="wh-1")
    again = await bus.publish("webhooks.s", b"a", {"h": "1"}, dedup_id="wh-1")
    other = await bus.publish("webhooks.s", b"b", dedup_id="wh-2")
    assert again == first
    assert other != first
    got = await take(bus, "webhooks.s", "g", 2)
    assert [d.message.id for d in got] == [first, other]
    assert await nothing_within(bus, "webhooks.s", "g", 0.3)


async def test_dedup_applies_within_and_across_batches(bus: Bus) -> None:
    ids = await bus.publish_many(
        "events.d", [(b"1", None, "e1"), (b"2", None, "e2"), (b"1", None, "e1"), (b"3", None, None)]
    )
    assert ids[0] == ids[2]
    assert len(set(ids)) == 3
    replay = await bus.publish_many("events.d", [(b"2", None, "e2"), (b"4", None, "e4")])
    assert replay[0] == ids[1]
    got = await take(bus, "events.d", "g", 4)
    assert [d.message.data for d in got] == [b"1", b"2", b"3", b"4"]


async def test_dedup_is_per_topic(bus: Bus) -> None:
    a = await bus.publish("events.x", b"1", dedup_id="same")
    b = await bus.publish("events.y", b"1", dedup_id="same")
    assert a != b
    assert len(await take(bus, "events.y", "g", 1)) == 1


async def test_concurrent_publishes_each_get_their_own_ids(bus: Bus) -> None:
    """Publishes made together (batched by the backend) each return their messages' ids, and
    a dedup id repeated by another caller resolves to the first message."""
    results = await asyncio.gather(
        bus.publish("events.c", b"a", {"n": "a"}, dedup_id="x"),
        bus.publish_many("events.c", [(b"b", None, None), (b"c", {"n": "c"}, "y")]),
        bus.publish("events.c", b"a-again", dedup_id="x"),
        bus.publish("events.other", b"z"),
    )
    first, many, again, other = results
    assert isinstance(first, str) and isinstance(again, str) and isinstance(many, list)
    assert again == first
    assert len({first, *many}) == 3
    got = await take(bus, "events.c", "g", 3)
    assert {d.message.id: d.message.data for d in got} == {
        first: b"a",
        many[0]: b"b",
        many[1]: b"c",
    }
    assert await nothing_within(bus, "events.c", "g", 0.3)
    (elsewhere,) = await take(bus, "events.other", "g", 1)
    assert elsewhere.message.id == other
