"""A deleted destination's topic is retired: its worker drops the events still waiting for it
(as before), then retires ``deliveries.<id>`` on the bus and ends, instead of polling the empty
topic forever; an event routed to it later gets a new worker, which does the same. A real
control service, Node workers, gateway and delivery service in this process, on the SQLite bus
and on NATS JetStream."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fnbox.bus import Bus, BusUnavailable, open_bus
from fnbox.bus.jetstream import JetStreamBus
from fnbox.client import FnboxClient
from fnbox.delivery import headers as h
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.destination import GROUP
from fnbox.delivery.service import DeliveryService
from fnbox.server.app import ControlService

from tests.e2e import pipeline
from tests.e2e.backends import NATS_URL
from tests.e2e.system import eventually

pytestmark = pytest.mark.timeout(120)

RETIRED = "topic retired"


@pytest.fixture(params=["sqlite", "nats"])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    if request.param == "sqlite":
        opened = open_bus(f"sqlite:///{tmp_path / 'bus.db'}")
    else:
        opened = JetStreamBus([NATS_URL], namespace=f"test_{uuid.uuid4().hex[:12]}")
    try:
        await opened.start()
    except BusUnavailable as exc:
        pytest.skip(f"NATS JetStream not reachable at {NATS_URL}: {exc}")
    try:
        yield opened
    finally:
        if isinstance(opened, JetStreamBus):
            await opened.delete_namespace()
        await opened.close()


async def test_a_deleted_destination_drops_its_events_then_retires_its_topic(
    control: ControlService, tmp_path: Path, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fnbox.delivery.destination")
    token = (tmp_path / "admin.token").read_text().strip()
    plane = ControlPlane(control.address, token)
    # The gateway routes its events itself (as in ``fnbox serve``); the destination workers
    # start only once the destination is deleted, so its events are still waiting then.
    delivery, gateway = pipeline.services(bus, plane)
    async with FnboxClient(control.address, token) as client:
        src = await pipeline.source(client)
        dest = await pipeline.destination(client, "Doomed", "http://127.0.0.1:9/", [src.name])
        topic = h.topic(h.DELIVERIES, dest.name)
        await gateway.start()
        try:
            async with aiohttp.ClientSession() as session:
                events = {"events": [pipeline.track(i) for i in range(3)]}
                status, _, _ = await pipeline.post(
                    session, pipeline.webhook_url(f"http://127.0.0.1:{gateway.port}", src), events
                )
            assert status == 202
            await eventually(lambda: _pending_is(bus, topic, 3), within=30, what="3 routed")
            await client.instances.delete(dest.name)
            await delivery.start()

            await eventually(lambda: _retired(bus, delivery, topic), within=30, what="retired")
            assert await bus.pending(topic, GROUP) == 0  # dropped, as before
            assert _retirements(caplog, topic) == 1

            # An event routed before the routers noticed the deletion: a new worker drops it
            # and retires the topic again.
            await bus.publish(topic, b'{"event":"late"}', {h.INSTANCE: dest.name})
            delivery.notice(topic)
            await eventually(lambda: _retirements(caplog, topic) == 2, within=30, what="again")
            await eventually(lambda: _retired(bus, delivery, topic), within=30, what="retired")
            assert await bus.pending(topic, GROUP) == 0
        finally:
            await gateway.stop()
            await delivery.stop()
            await plane.close()


async def _pending_is(bus: Bus, topic: str, expected: int) -> bool:
    return await bus.pending(topic, GROUP) == expected


async def _retired(bus: Bus, delivery: DeliveryService, topic: str) -> bool:
    """The topic is not listed and no worker (object or task) is left for it."""
    working = any(t.get_name() == f"delivery:{topic}" for t in asyncio.all_tasks())
    listed = topic in await bus.topics(h.DELIVERIES + ".")
    return not working and not listed and topic not in delivery.workers


def _retirements(caplog: pytest.LogCaptureFixture, topic: str) -> int:
    return sum(1 for r in caplog.records if topic in r.getMessage() and RETIRED in r.getMessage())
