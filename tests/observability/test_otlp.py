"""fnbox pointed at an OTLP collector: one webhook, one trace, all the way to the destination's
outbound request (``fnbox serve``, and the scale-out processes on NATS); metrics too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from fnbox.client import FnboxClient
from fnbox.telemetry.invoke import SPAN_NAME as CLIENT_INVOKE

from tests.e2e.backends import Backend, backend
from tests.e2e.pipeline import post, webhook_url
from tests.e2e.sink import Sink
from tests.e2e.system import System, base_env, eventually
from tests.observability.otlp import ReceivedSpan, Receiver, otlp_receiver
from tests.observability.test_trace import pipeline

GATEWAY = "POST /v1/sources/{instance}"


@pytest.fixture(params=["embedded", "nats"])
def chosen(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """``fnbox serve``, or control + gateway + delivery processes on NATS JetStream."""
    with backend(request.param) as running:
        yield running


async def test_a_webhook_exports_one_trace_to_the_collector(
    tmp_path: Path, chosen: Backend
) -> None:
    async with otlp_receiver() as receiver, Sink() as sink:
        await _one_webhook(tmp_path, receiver, sink, chosen)
    spans = _trace(receiver)
    by_id = {s.span_id: s for s in spans}
    assert [s.span.name for s in spans if not s.parent_id] == [GATEWAY]
    assert all(s.parent_id in by_id for s in spans if s.parent_id), "a parent is missing"
    names = [s.span.name for s in spans]
    # A gateway with delivery in its process publishes the events' fan-out itself.
    routed = "publish events" if chosen.scale_out else "publish deliveries"
    for name in ("publish webhooks", "process webhooks", routed, "deliver deliveries"):
        assert names.count(name) == 1, names
    assert names.count(CLIENT_INVOKE) == names.count("fnbox.invoke") == 2
    assert names.count("executor.invoke") == 2 and names.count("fetch POST") == 2

    def ancestors(span: ReceivedSpan) -> list[str]:
        chain = []
        while span.parent_id:
            span = by_id[span.parent_id]
            chain.append(span.span.name)
        return chain

    [destination_fetch] = [s for s in spans if _fetched(s, "/dest")]
    assert ancestors(destination_fetch) == [
        "executor.invoke",
        "fnbox.invoke",
        CLIENT_INVOKE,
        "deliver deliveries",
        routed,
        "process webhooks",
        "publish webhooks",
        GATEWAY,
    ]
    assert destination_fetch.attribute("http.response.status_code") == 200
    service = {s.span.name: s.service for s in spans}
    if chosen.scale_out:  # three processes, one trace
        assert service[GATEWAY] == service["process webhooks"] == "fnbox-gateway"
        assert service["deliver deliveries"] == service[CLIENT_INVOKE] == "fnbox-delivery"
        assert service["fnbox.invoke"] == service["fetch POST"] == "fnbox"
    else:
        assert set(service.values()) == {"fnbox"}
    assert "fnbox.invocations" in receiver.metric_names
    # fnbox's own histogram (fnbox.telemetry.histograms), exported with the SDK's metrics.
    assert "fnbox.invocation.duration" in receiver.metric_names


async def _one_webhook(tmp_path: Path, receiver: Receiver, sink: Sink, chosen: Backend) -> None:
    env = base_env(
        {
            **chosen.env,
            "FNBOX_TELEMETRY__OTLP_ENDPOINT": receiver.endpoint,
            "FNBOX_TELEMETRY__EXPORT_INTERVAL_S": "0.2",
        }
    )
    system = System(tmp_path / "data", env, scale_out=chosen.scale_out)
    try:
        await system.start(gateways=1, deliveries=1)
        async with FnboxClient(system.target, system.token) as client:
            source = await pipeline(client, sink)
            async with aiohttp.ClientSession() as session:
                status, _, _ = await post(
                    session, webhook_url(system.http, source), {"event": "E", "userId": "u"}
                )
            assert status == 202
            await eventually(lambda: len(sink.received("dest")) == 1, within=30, what="delivery")
        await eventually(lambda: bool(_trace(receiver)), within=20, what="the exported trace")
        await eventually(
            lambda: "fnbox.invocations" in receiver.metric_names, within=20, what="metrics"
        )
    finally:
        # In a thread: the collector (this event loop) must keep answering the last export.
        await asyncio.to_thread(system.stop)


def _fetched(span: ReceivedSpan, path: str) -> bool:
    return span.span.name == "fetch POST" and str(span.attribute("url.full")).endswith(path)


def _trace(receiver: Receiver) -> list[ReceivedSpan]:
    """The webhook's trace once its destination fetch arrived (else empty)."""
    roots = [s for s in receiver.spans if s.span.name == GATEWAY]
    if not roots:
        return []
    spans = [s for s in receiver.spans if s.trace_id == roots[0].trace_id]
    return spans if any(_fetched(s, "/dest") for s in spans) else []
