"""Webhooks in, HTTP requests out: the pipeline end to end on each backend; the integrations
object decides which destinations an event reaches."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from fnbox.client import FnboxClient
from fnbox.functions.v1 import resources_pb2

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually, metric

pytestmark = pytest.mark.timeout(180)


async def test_webhooks_reach_the_destination_endpoint(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    await pipeline.destination(client, "endpoint", sink.url("events"), [src.name])
    url = pipeline.webhook_url(system.http, src)
    async with aiohttp.ClientSession() as session:
        ids = set()
        for i in range(5):
            status, answer, _ = await pipeline.post(session, url, pipeline.track(i))
            assert status == 202, answer
            ids.add(answer["id"])
        status, answer, _ = await pipeline.post(
            session, url, {"events": [pipeline.track(i, user="b") for i in range(3)]}
        )
        assert status == 202
    assert len(ids) == 5

    await eventually(lambda: len(sink.received("events")) >= 8, within=60, what="8 events")
    received = sink.received("events")
    assert sorted(str(e["userId"]) for e in received) == sorted(
        [f"u{i}" for i in range(5)] + [f"b{i}" for i in range(3)]
    )
    for event in received:
        assert event["type"] == "track" and event["event"] == "Order Completed"
        assert event["messageId"] and event["receivedAt"]
        assert event["context"]["library"]["name"] == "fnbox-source-function"  # type: ignore[index]
    assert len({e["messageId"] for e in received}) == 8


LOOKUP_SOURCE = """
async function onRequest(request, settings) {
  const body = request.json()
  await fetch(settings.url, { method: 'POST', body: JSON.stringify(body) })
  Segment.track({ event: body.event, userId: body.userId })
}
"""


async def test_one_trace_context_flows_from_source_to_destination(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    """Whether or not the trace is sampled (no spans are recorded here unless a collector is
    set), the webhook's trace id reaches the source's and the destination's requests."""
    fn = await pipeline.deployed(
        client,
        "lookup-src",
        resources_pb2.FUNCTION_TYPE_SOURCE,
        LOOKUP_SOURCE,
        schema=[pipeline.URL_SETTING],
    )
    src = await client.instances.create(
        fn.name, "lookup-src", settings=orjson.dumps({"url": sink.url("lookup")})
    )
    await pipeline.destination(client, "traced", sink.url("traced"), [src.name])
    url = pipeline.webhook_url(system.http, src)
    async with aiohttp.ClientSession() as session:
        for i in range(2):
            status, answer, _ = await pipeline.post(session, url, pipeline.track(i))
            assert status == 202, answer
    await eventually(lambda: len(sink.received("traced")) == 2, within=60, what="2 events")
    lookups = [tp.split("-") for tp in sink.route("lookup").traceparents]
    deliveries = [tp.split("-") for tp in sink.route("traced").traceparents]
    assert len(lookups) == 2 and all(len(tp) == 4 for tp in lookups + deliveries)
    # One trace per webhook, the same at both ends (with the same sampling decision).
    assert {(tp[1], tp[3]) for tp in lookups} == {(tp[1], tp[3]) for tp in deliveries}
    assert len({tp[1] for tp in lookups}) == 2


async def test_every_workspace_is_served(system: System, client: FnboxClient, sink: Sink) -> None:
    created = await client.workspaces.create("second")
    async with FnboxClient(system.target, created.admin_token.secret) as other:
        src = await pipeline.source(other, "theirs")
        await pipeline.destination(other, "their-endpoint", sink.url("second"), [src.name])
    assert src.name.startswith(created.workspace.name + "/")
    acked, _, _ = await pipeline.post_many(
        pipeline.webhook_url(system.http, src), [pipeline.track(i) for i in range(3)]
    )
    assert len(acked) == 3
    await eventually(lambda: len(sink.received("second")) == 3, within=60, what="3 events")


INTEGRATIONS_SOURCE = """
async function onRequest(request, settings) {
  const e = request.json()
  Segment.track({ event: e.event, userId: e.userId, integrations: e.integrations })
}
"""


async def test_integrations_object_decides_which_destinations_are_invoked(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    created = await client.workspaces.create("Acme Corp")
    async with FnboxClient(system.target, created.admin_token.secret) as acme:
        fn = await pipeline.deployed(
            acme, "tagged", resources_pb2.FUNCTION_TYPE_SOURCE, INTEGRATIONS_SOURCE
        )
        src = await acme.instances.create(fn.name, "tagged")
        for name in ("Alpha", "Beta", "Gamma"):
            await pipeline.destination(acme, name, sink.url(name), [src.name])
    # Segment's key of a destination function: "<Fn display name> (<Workspace display name>)".
    alpha, beta = "Alpha (Acme Corp)", "Beta (Acme Corp)"
    cases: list[tuple[dict[str, object] | None, set[str]]] = [
        (None, {"Alpha", "Beta", "Gamma"}),
        ({"All": False, alpha: True}, {"Alpha"}),
        ({beta: False}, {"Alpha", "Gamma"}),
        ({"All": True, alpha: {"option": 1}, "Beta": False}, {"Alpha", "Beta", "Gamma"}),
        ({"All": False}, set()),
        ({"All": False, "alpha (acme corp)": True}, set()),  # case-sensitive
    ]
    filtered_before = await metric(system, FILTERED)
    bodies: list[object] = [
        {"event": f"case {i}", "userId": f"u{i}", "integrations": integrations}
        for i, (integrations, _) in enumerate(cases)
    ]
    acked, _, _ = await pipeline.post_many(pipeline.webhook_url(system.http, src), bodies)
    assert len(acked) == len(cases)
    expected = {
        name: sorted(f"case {i}" for i, (_, names) in enumerate(cases) if name in names)
        for name in ("Alpha", "Beta", "Gamma")
    }
    blocked = sum(3 - len(names) for _, names in cases)

    async def settled() -> bool:
        delivered = all(len(sink.received(n)) >= len(events) for n, events in expected.items())
        return delivered and await metric(system, FILTERED) - filtered_before >= blocked

    # Every (event, destination) pair is now either delivered or counted as filtered.
    await eventually(settled, within=60, what=lambda: f"deliveries and {blocked} filtered")
    for name, events in expected.items():
        assert sorted(str(e["event"]) for e in sink.received(name)) == events
        assert sink.route(name).attempts == len(events)  # blocked events were never invoked
    assert await metric(system, FILTERED) - filtered_before == blocked


FILTERED = "fnbox_delivery_filtered_total"
