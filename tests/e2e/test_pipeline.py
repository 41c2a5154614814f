"""Webhooks in, HTTP requests out: the pipeline end to end on each backend."""

from __future__ import annotations

import aiohttp
import pytest
from fnbox.client import FnboxClient

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually

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
