"""Delivery beside the gateway (``fnbox serve``): the source processor routes a webhook's events
itself, straight to ``deliveries.<destination>`` (no ``events.*`` hop, no router), with the
router's fan-out. A real control service, Node workers and SQLite bus, in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from fnbox.bus import Bus
from fnbox.client import FnboxClient
from fnbox.delivery import destination
from fnbox.delivery import headers as h
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.integrations import IntegrationKeys
from fnbox.delivery.routing import Connections, Routes
from fnbox.functions.v1 import resources_pb2
from fnbox.gateway import http
from fnbox.gateway.embedded import PipelineComponent, pipeline_component
from fnbox.gateway.envelope import webhook_headers
from fnbox.server.app import ControlService
from fnbox.server.main import ComponentContext
from fnbox.server.settings import Settings, load_settings

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import eventually

pytestmark = pytest.mark.timeout(120)

# Passes each event's integrations object on.
SOURCE = """
async function onRequest(request, settings) {
  for (const e of request.json().events) {
    Segment.track({ event: e.event, userId: e.userId, integrations: e.integrations })
  }
}
"""


@dataclass
class Control:
    service: ControlService
    settings: Settings
    token: str

    @property
    def address(self) -> str:
        return self.service.address


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Control]:
    """A control service whose functions may reach the sink on 127.0.0.1."""
    settings = load_settings(
        data_dir=tmp_path,
        grpc={"listen": "127.0.0.1:0"},
        executor={"warm_workers": 1, "egress_allow": ["127.0.0.1/32"]},
        gateway=pipeline.FAST_GATEWAY,
        delivery=pipeline.FAST_DELIVERY,
    )
    service = ControlService(settings)
    await service.start()
    try:
        yield Control(service, settings, (tmp_path / "admin.token").read_text().strip())
    finally:
        await service.stop()


@pytest.fixture
async def serve(controller: Control) -> AsyncIterator[PipelineComponent]:
    """The pipeline as ``fnbox serve`` runs it: gateway and delivery workers on one bus."""
    component = pipeline_component(
        ComponentContext(controller.settings, controller.address, controller.token)
    )
    await component.start()
    try:
        yield component
    finally:
        await component.stop()


async def _acme(controller: Control) -> tuple[FnboxClient, resources_pb2.Instance]:
    """A client of a new workspace "Acme" and a source instance in it."""
    async with FnboxClient(controller.address, controller.token) as admin:
        created = await admin.workspaces.create("Acme")
    acme = FnboxClient(controller.address, created.admin_token.secret)
    fn = await pipeline.deployed(acme, "tagged", resources_pb2.FUNCTION_TYPE_SOURCE, SOURCE)
    return acme, await acme.instances.create(fn.name, "tagged")


async def _post(base: str, src: resources_pb2.Instance, events: list[dict[str, object]]) -> None:
    async with aiohttp.ClientSession() as session:
        status, _, _ = await pipeline.post(
            session, pipeline.webhook_url(base, src), {"events": events}
        )
    assert status == 202


def _event(name: str, integrations: dict[str, object] | None = None) -> dict[str, object]:
    return {"event": name, "userId": "u", "integrations": integrations}


async def _settled(bus: Bus, topic: str, group: str) -> bool:
    return await bus.pending(topic, group) == 0


async def test_each_destination_gets_each_event_once_as_its_integrations_allow(
    controller: Control, serve: PipelineComponent, sink: Sink
) -> None:
    assert serve.gateway is not None and serve.delivery is not None and serve.bus is not None
    acme, src = await _acme(controller)
    async with acme:
        for name in ("Alpha", "Beta", "Gamma"):
            await pipeline.destination(acme, name, sink.url(name), [src.name])
    cases = [
        _event("e0"),
        _event("e1", {"Beta (Acme)": False}),
        _event("e2", {"All": False, "Alpha (Acme)": True}),
    ]
    expected = {"Alpha": ["e0", "e1", "e2"], "Beta": ["e0"], "Gamma": ["e0", "e1"]}
    await _post(f"http://127.0.0.1:{serve.gateway.port}", src, cases)

    processor = serve.gateway.processor
    await eventually(lambda: processor.processed == 1, within=60, what="the webhook processed")
    await eventually(
        lambda: all(len(sink.received(n)) >= len(e) for n, e in expected.items()),
        within=60,
        what="the deliveries",
    )
    for name, events in expected.items():
        assert sorted(str(e["event"]) for e in sink.received(name)) == events
        assert set(sink.message_ids(name).values()) == {1}
        assert sink.route(name).attempts == len(events)  # a blocked event is never invoked
    assert processor.filtered == 3
    # Routed in the source processor: nothing went through events.* and the router.
    assert await serve.bus.topics(h.EVENTS + ".") == []
    assert serve.delivery.router.routed == 0
    assert await _settled(serve.bus, h.topic(h.WEBHOOKS, src.name), http.GROUP)


async def test_a_source_without_destinations_acknowledges_its_webhooks(
    controller: Control, serve: PipelineComponent
) -> None:
    assert serve.gateway is not None and serve.bus is not None
    acme, src = await _acme(controller)
    await acme.close()
    base = f"http://127.0.0.1:{serve.gateway.port}"
    await _post(base, src, [_event("a")])
    await _post(base, src, [_event("b"), _event("c")])

    processor = serve.gateway.processor
    await eventually(lambda: processor.processed == 2, within=60, what="both webhooks processed")
    assert await _settled(serve.bus, h.topic(h.WEBHOOKS, src.name), http.GROUP)
    assert await serve.bus.topics(h.EVENTS + ".") == []
    assert await serve.bus.topics(h.DELIVERIES + ".") == []


async def test_a_webhook_processed_again_delivers_nothing_twice(
    controller: Control, serve: PipelineComponent, sink: Sink
) -> None:
    """What a crash between the fan-out and the webhook's ack leads to: the same stored webhook
    is processed again, emits the same messageIds, and the bus drops the republished copies."""
    assert serve.gateway is not None and serve.bus is not None
    acme, src = await _acme(controller)
    async with acme:
        dest = await pipeline.destination(acme, "Once", sink.url("once"), [src.name])
    topic = h.topic(h.WEBHOOKS, src.name)
    headers = webhook_headers(
        instance=src.name,
        webhook_id="wh-redelivered",
        method="POST",
        url=pipeline.webhook_url("http://gateway", src),
        request_headers={"content-type": "application/json"},
        received_at=h.rfc3339(),
    )
    body = orjson.dumps({"events": [_event("x"), _event("y"), _event("z")]})
    gateway, bus = serve.gateway, serve.bus
    processor = gateway.processor
    deliveries = h.topic(h.DELIVERIES, dest.name)

    async def process_a_copy(copies: int) -> None:
        # No dedup id: each copy is stored and processed, as a redelivered webhook would be.
        await bus.publish(topic, body, dict(headers))
        gateway.notice(topic)
        await eventually(lambda: processor.processed == copies, within=60, what="processed")
        await eventually(lambda: len(sink.received("once")) >= 3, within=60, what="deliveries")
        await eventually(
            lambda: _settled(bus, deliveries, destination.GROUP),
            within=60,
            what="the deliveries settled",
        )

    await process_a_copy(1)
    await process_a_copy(2)
    assert sorted(str(e["event"]) for e in sink.received("once")) == ["x", "y", "z"]
    assert set(sink.message_ids("once").values()) == {1}


class Link:
    """A TCP forwarder to ``port`` that can be down (it then accepts and closes at once)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self.up = False
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Link:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    @property
    def target(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            self.refused += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def test_a_failed_routing_lookup_retries_the_webhook_until_it_is_routed(
    controller: Control, tmp_path: Path, sink: Sink
) -> None:
    acme, src = await _acme(controller)
    async with acme:
        await pipeline.destination(acme, "Later", sink.url("later"), [src.name])
    port = int(controller.address.rsplit(":", 1)[1])
    bus = await _open_bus(tmp_path)
    plane = ControlPlane(controller.address, controller.token)
    async with Link(port) as link:
        # Invocations reach the control service; the routing lookups go through the link.
        routing = ControlPlane(link.target, controller.token)
        delivery, gateway = pipeline.services(
            bus, plane, routes=Routes(Connections(routing, 0.2), IntegrationKeys(routing, 0.2))
        )
        await delivery.start()
        await gateway.start()
        try:
            await _post(f"http://127.0.0.1:{gateway.port}", src, [_event("late")])
            await eventually(lambda: link.refused >= 1, within=30, what="a failed lookup")
            # Not acknowledged without its events, not dead-lettered.
            assert gateway.processor.processed == 0
            assert await bus.pending(h.topic(h.WEBHOOKS, src.name), http.GROUP) == 1
            assert sink.received("later") == []
            link.up = True
            await eventually(lambda: len(sink.received("later")) == 1, within=60, what="routed")
            await eventually(lambda: gateway.processor.processed == 1, within=30, what="acked")
            assert set(sink.message_ids("later").values()) == {1}
        finally:
            await gateway.stop()
            await delivery.stop()
            await routing.close()
            await plane.close()
            await bus.close()


async def _open_bus(tmp_path: Path) -> Bus:
    from fnbox.bus import open_bus

    bus = open_bus(f"sqlite:///{tmp_path / 'routing-bus.db'}")
    await bus.start()
    return bus


class CountingPlane(ControlPlane):
    """The real control plane, counting its workspace listings."""

    listed = 0

    async def list_instances(self, parent: str) -> list[resources_pb2.Instance]:
        self.listed += 1
        return await super().list_instances(parent)


async def test_webhooks_routed_together_list_their_workspace_once(controller: Control) -> None:
    acme, src = await _acme(controller)
    async with acme:
        dest = await pipeline.destination(acme, "Listed", "http://127.0.0.1:9/", [src.name])
    plane = CountingPlane(controller.address, controller.token)
    try:
        connections = Connections(plane, ttl=0)  # every call after a listing lists again
        found = await asyncio.gather(*(connections.destinations(src.name) for _ in range(20)))
        assert [[d.name for d in each] for each in found] == [[dest.name]] * 20
        assert plane.listed == 1
        await connections.destinations(src.name)
        assert plane.listed == 2
    finally:
        await plane.close()
