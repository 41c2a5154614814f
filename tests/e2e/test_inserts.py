"""Insert instances: a destination insert in front of a destination, a source insert on a
source; each transforms events and drops some (DropEvent)."""

from __future__ import annotations

import pytest
from fnbox.client import FnboxClient
from fnbox.functions.v1 import resources_pb2

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually

pytestmark = pytest.mark.timeout(180)

INSERT = """
async function onTrack(event, settings) {
  if (event.userId === '{drop}') throw new DropEvent('filtered')
  event.properties.{key} = true
  return event
}
"""


async def _insert(
    client: FnboxClient, name: str, type: resources_pb2.FunctionType, key: str, drop: str
) -> str:
    code = INSERT.replace("{key}", key).replace("{drop}", drop)
    fn = await pipeline.deployed(client, name, type, code)
    return (await client.instances.create(fn.name, name)).name


async def test_source_and_destination_inserts(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    source_insert = await _insert(
        client, "at-ingest", resources_pb2.FUNCTION_TYPE_INSERT_SOURCE, "ingested", "u0"
    )
    dest_insert = await _insert(
        client, "before-delivery", resources_pb2.FUNCTION_TYPE_INSERT_DESTINATION, "inserted", "u1"
    )
    src = await pipeline.source(client)
    await client.instances.update(src.name, insert_instance=source_insert)
    plain = await pipeline.destination(client, "plain", sink.url("plain"), [src.name])
    guarded = await pipeline.destination(client, "guarded", sink.url("guarded"), [src.name])
    await client.instances.update(guarded.name, insert_instance=dest_insert)
    assert (await client.instances.get(plain.name)).insert_instance == ""

    acked, _, _ = await pipeline.post_many(
        pipeline.webhook_url(system.http, src), [pipeline.track(i) for i in range(4)]
    )
    assert len(acked) == 4
    # u0 is dropped at ingest (no destination sees it), u1 by the guarded destination's insert.
    await eventually(lambda: len(sink.received("plain")) == 3, within=60, what="3 plain events")
    await eventually(lambda: len(sink.received("guarded")) == 2, within=60, what="2 guarded")
    for event in sink.received("plain"):
        assert event["properties"] == {"n": event["properties"]["n"], "ingested": True}  # type: ignore[index]
    for event in sink.received("guarded"):
        assert event["properties"]["ingested"] and event["properties"]["inserted"]  # type: ignore[index]
    assert sorted(str(e["userId"]) for e in sink.received("guarded")) == ["u2", "u3"]
    assert sorted(str(e["userId"]) for e in sink.received("plain")) == ["u1", "u2", "u3"]
