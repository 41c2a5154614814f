"""Consumer groups: each group sees everything; members of one group share the work."""

from __future__ import annotations

import asyncio
from collections import Counter

from fnbox.bus import Bus, Delivery

from tests.bus.conftest import BusTarget
from tests.bus.helpers import nothing_within, take


async def test_every_group_gets_every_message(bus: Bus) -> None:
    ids = await bus.publish_many("events.all", [(b"%d" % n, None, None) for n in range(10)])
    router = await take(bus, "events.all", "router", 10)
    audit = await take(bus, "events.all", "audit", 10)
    assert [d.message.id for d in router] == ids
    assert [d.message.id for d in audit] == ids
    for delivery in router:
        await delivery.ack()
    # One group acking does not take the messages away from a group that joins later.
    late = await take(bus, "events.all", "late", 10)
    assert [d.message.id for d in late] == ids


async def test_competing_consumers_split_a_topic_without_duplicates(
    bus: Bus, bus_target: BusTarget
) -> None:
    total = 60
    ids = await bus.publish_many("events.split", [(b"%d" % n, None, None) for n in range(total)])
    async with bus_target.open() as second:
        seen: list[tuple[str, str]] = []

        async def member(name: str, client: Bus) -> None:
            while len(seen) < total:
                got = await client.consume("events.split", "workers", batch=7, wait=0.5, lease=30)
                for delivery in got:
                    seen.append((name, delivery.message.id))
                    await delivery.ack()

        await asyncio.wait_for(
            asyncio.gather(member("a", bus), member("b", second), member("c", bus)), 20
        )
        assert await nothing_within(second, "events.split", "workers", 0.3)
    counts = Counter(message_id for _, message_id in seen)
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}


async def test_a_message_leased_to_one_member_is_not_given_to_another(
    bus: Bus, bus_target: BusTarget
) -> None:
    await bus.publish("events.one", b"x")
    held: list[Delivery] = await take(bus, "events.one", "g", 1)
    async with bus_target.open() as other:
        assert await nothing_within(other, "events.one", "g", 0.5)
    await held[0].ack()
