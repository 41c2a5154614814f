"""``fnbox serve`` pointed at an OTLP collector: one webhook, one trace, all the way to the
destination's outbound request; metrics too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from fnbox.client import FnboxClient
from fnbox.telemetry.invoke import SPAN_NAME as CLIENT_INVOKE

from tests.e2e.pipeline import post, webhook_url
from tests.e2e.sink import Sink
from tests.e2e.system import System, base_env, eventually
from tests.observability.otlp import ReceivedSpan, otlp_receiver
from tests.observability.test_trace import pipeline


async def test_a_webhook_exports_one_trace_to_the_collector(tmp_path: Path) -> None:
    async with otlp_receiver() as receiver, Sink() as sink:
        env = base_env(
            {
                "FNBOX_TELEMETRY__OTLP_ENDPOINT": receiver.endpoint,
                "FNBOX_TELEMETRY__EXPORT_INTERVAL_S": "0.2",
            }
        )
        system = System(tmp_path / "data", env)
        try:
            await system.start()
            async with FnboxClient(system.target, system.token) as client:
                source = await pipeline(client, sink)
                async with aiohttp.ClientSession() as session:
                    status, _, _ = await post(
                        session, webhook_url(system.http, source), {"event": "E", "userId": "u"}
                    )
                assert status == 202
                await eventually(
                    lambda: len(sink.received("dest")) == 1, within=30, what="the delivery"
                )

            def exported() -> list[ReceivedSpan]:
                roots = [s for s in receiver.spans if s.span.name.startswith("POST /v1/sources")]
                if not roots:
                    return []
                spans = [s for s in receiver.spans if s.trace_id == roots[0].trace_id]
                fetched = any(
                    str(s.attribute("url.full")).endswith("/dest") and s.span.name == "fetch POST"
                    for s in spans
                )
                return spans if fetched else []

            await eventually(lambda: bool(exported()), within=20, what="the exported trace")
            await eventually(
                lambda: "fnbox.invocations" in receiver.metric_names,
                within=20,
                what="the exported metrics",
            )
        finally:
            # In a thread: the collector (this event loop) must keep answering the last export.
            await asyncio.to_thread(system.stop)

    spans = exported()
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert [r.span.name for r in roots] == ["POST /v1/sources/{instance}"]
    assert all(s.parent_id in by_id for s in spans if s.parent_id), "a parent is missing"
    assert {s.service for s in spans} == {"fnbox"}
    names = [s.span.name for s in spans]
    for name in ("publish webhooks", "process webhooks", "publish events", "deliver deliveries"):
        assert names.count(name) == 1, names
    assert names.count(CLIENT_INVOKE) == names.count("fnbox.invoke") == 2
    assert names.count("executor.invoke") == 2 and names.count("fetch POST") == 2

    def ancestors(span: ReceivedSpan) -> list[str]:
        chain = []
        while span.parent_id:
            span = by_id[span.parent_id]
            chain.append(span.span.name)
        return chain

    destination_fetch = next(
        s
        for s in spans
        if s.span.name == "fetch POST" and str(s.attribute("url.full")).endswith("/dest")
    )
    assert ancestors(destination_fetch) == [
        "executor.invoke",
        "fnbox.invoke",
        CLIENT_INVOKE,
        "deliver deliveries",
        "publish events",
        "process webhooks",
        "publish webhooks",
        "POST /v1/sources/{instance}",
    ]
    assert destination_fetch.attribute("http.response.status_code") == 200
