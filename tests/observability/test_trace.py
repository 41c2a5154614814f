"""One W3C trace per webhook, from the gateway to the destination's outbound request."""

from __future__ import annotations

import aiohttp
import orjson
from fnbox.client import FnboxClient
from fnbox.functions.v1 import resources_pb2
from fnbox.telemetry.invoke import SPAN_NAME as CLIENT_INVOKE
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.e2e.pipeline import DESTINATION, URL_SETTING, deployed, post, webhook_url
from tests.e2e.sink import Sink
from tests.e2e.system import eventually
from tests.observability.conftest import Stack
from tests.observability.traces import Trace

# The source looks the user up before emitting: an outbound request in the source's span too.
SOURCE = """
async function onRequest(request, settings) {
  const body = request.json()
  const lookup = await fetch(settings.url, { method: 'POST', body: JSON.stringify(body) })
  Segment.track({ event: body.event, userId: body.userId, properties: { found: lookup.ok } })
}
"""


async def pipeline(client: FnboxClient, sink: Sink) -> resources_pb2.Instance:
    """A source (fetching /lookup) connected to a destination (posting to /dest)."""
    source_fn = await deployed(
        client, "src", resources_pb2.FUNCTION_TYPE_SOURCE, SOURCE, schema=[URL_SETTING]
    )
    source = await client.instances.create(
        source_fn.name, "src", settings=orjson.dumps({"url": sink.url("lookup")})
    )
    destination_fn = await deployed(
        client, "dst", resources_pb2.FUNCTION_TYPE_DESTINATION, DESTINATION, schema=[URL_SETTING]
    )
    await client.instances.create(
        destination_fn.name,
        "dst",
        settings=orjson.dumps({"url": sink.url("dest")}),
        sources=[source.name],
    )
    return source


def _fetch_to(spans: list[ReadableSpan], path: str) -> ReadableSpan | None:
    found = [s for s in spans if str((s.attributes or {}).get("url.full", "")).endswith(path)]
    return found[0] if found else None


async def test_one_webhook_is_one_trace_down_to_the_destination_fetch(
    stack: Stack, spans: InMemorySpanExporter
) -> None:
    source = await pipeline(stack.client, stack.sink)
    async with aiohttp.ClientSession() as session:
        status, _, _ = await post(
            session, webhook_url(stack.http, source), {"event": "Signed Up", "userId": "u1"}
        )
    assert status == 202
    await eventually(lambda: len(stack.sink.received("dest")) == 1, within=30, what="delivery")

    def delivered() -> bool:
        finished = list(spans.get_finished_spans())
        return _fetch_to(finished, "/dest") is not None and any(
            s.name == "deliver deliveries" for s in finished
        )

    await eventually(delivered, within=10, what="the delivery's spans")
    finished = list(spans.get_finished_spans())
    gateway = next(s for s in finished if s.name == "POST /v1/sources/{instance}")
    assert gateway.context is not None
    trace = Trace(finished, gateway.context.trace_id)

    assert trace.parent(gateway) is None and gateway.kind is SpanKind.SERVER
    assert (gateway.attributes or {})["http.response.status_code"] == 202
    published = trace.one("publish webhooks", gateway)
    assert published.kind is SpanKind.PRODUCER
    processed = trace.one("process webhooks", published)
    assert processed.kind is SpanKind.CONSUMER
    # Delivery runs in the gateway's process: the source processor publishes the fan-out.
    routed = trace.one("publish deliveries", processed)
    delivered_span = trace.one("deliver deliveries", routed)
    assert (delivered_span.attributes or {})["fnbox.verdict"] == "OK"

    for consumer, path in ((processed, "/lookup"), (delivered_span, "/dest")):
        client_span = trace.one(CLIENT_INVOKE, consumer)
        assert client_span.kind is SpanKind.CLIENT
        assert (client_span.attributes or {})["fnbox.outcome"] == "OK"
        server_span = trace.one("fnbox.invoke", client_span)
        assert server_span.kind is SpanKind.SERVER
        executor = trace.one("executor.invoke", server_span)
        fetch = trace.one("fetch POST", executor)
        attributes = dict(fetch.attributes or {})
        assert fetch.kind is SpanKind.CLIENT
        assert attributes["http.request.method"] == "POST"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["http.response.status_code"] == 200
        assert str(attributes["url.full"]).endswith(path)
        # Real times from the worker, inside the executor's span.
        assert executor.start_time is not None and executor.end_time is not None
        assert fetch.start_time is not None and fetch.end_time is not None
        assert executor.start_time <= fetch.start_time <= fetch.end_time <= executor.end_time

    assert all(s.status.status_code is not StatusCode.ERROR for s in trace.spans), trace.describe()


async def test_user_failures_are_attributes_not_errors(
    stack: Stack, spans: InMemorySpanExporter
) -> None:
    code = """
    async function onTrack(event, settings) {
      try { await fetch('http://10.255.0.1/refused', { method: 'PUT' }) } catch (e) {}
      throw new Error('nope')
    }
    """
    fn = await deployed(stack.client, "fails", resources_pb2.FUNCTION_TYPE_DESTINATION, code)
    result = await stack.client.invoke(fn.id, event=b'{"type":"track","event":"x"}')
    assert result.error.message == "nope"
    executor = next(s for s in spans.get_finished_spans() if s.name == "executor.invoke")
    assert (executor.attributes or {})["fnbox.outcome"] == "ERROR"
    assert executor.status.status_code is StatusCode.UNSET
    assert executor.context is not None
    fetch = next(s for s in spans.get_finished_spans() if s.name == "fetch PUT")
    assert fetch.parent is not None and fetch.parent.span_id == executor.context.span_id
    attributes = dict(fetch.attributes or {})
    assert "EGRESS_DENIED" in str(attributes["error.type"])
    assert "http.response.status_code" not in attributes
    assert fetch.status.status_code is StatusCode.UNSET
