"""Metrics: the Prometheus text exposition, and what the services report through it."""

from __future__ import annotations

import re

import aiohttp
import orjson
from fnbox.functions.v1 import resources_pb2
from fnbox.telemetry.prometheus import render
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.e2e.pipeline import URL_SETTING, deployed, post, source, webhook_url
from tests.e2e.system import eventually
from tests.observability.conftest import StackFactory

# Posts to the sink, then gives up for good: each event becomes a dead letter.
REJECTING = """
async function onTrack(event, settings) {
  await fetch(settings.url, { method: 'POST', body: JSON.stringify(event) })
  throw new ValidationError('not for us')
}
"""


def test_exposition_follows_the_prometheus_conventions() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    meter.create_counter("fnbox.things", unit="1", description="Things.").add(3, {"k": 'a"b'})
    meter.create_up_down_counter("fnbox.level").add(-2)
    histogram = meter.create_histogram(
        "fnbox.wait", unit="s", explicit_bucket_boundaries_advisory=(0.1, 1.0)
    )
    for value in (0.05, 0.5, 0.7, 3.0):
        histogram.record(value)
    data = reader.get_metrics_data()
    assert data is not None
    text = render(data)
    assert "# TYPE fnbox_things_total counter\n" in text
    assert 'fnbox_things_total{k="a\\"b"} 3\n' in text
    assert "# TYPE fnbox_level gauge\nfnbox_level -2\n" in text
    assert "# TYPE fnbox_wait_seconds histogram\n" in text
    assert 'fnbox_wait_seconds_bucket{le="0.1"} 1\n' in text
    assert 'fnbox_wait_seconds_bucket{le="1"} 3\n' in text
    assert 'fnbox_wait_seconds_bucket{le="+Inf"} 4\n' in text
    assert "fnbox_wait_seconds_sum 4.25\nfnbox_wait_seconds_count 4\n" in text


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name`` whose labels include ``labels`` (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


async def test_the_pipeline_reports_invocations_requests_workers_lag_and_dead_letters(
    stack_factory: StackFactory,
) -> None:
    stack = await stack_factory(
        telemetry={"metrics_listen": "127.0.0.1:0", "gauges_interval_s": 0.1}
    )
    client = stack.client
    src = await source(client, "metered-source")
    fn = await deployed(
        client, "rejects", resources_pb2.FUNCTION_TYPE_DESTINATION, REJECTING, schema=[URL_SETTING]
    )
    await client.instances.create(
        fn.name, "rejects", settings=orjson.dumps({"url": stack.sink.url("in")}), sources=[src.name]
    )
    gateway_metrics = f"{stack.http}/metrics"
    async with aiohttp.ClientSession() as session:

        async def scrape(url: str = gateway_metrics) -> str:
            async with session.get(url) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                return await response.text()

        accepted = _value(await scrape(), "fnbox_gateway_requests_total", status="202")
        for i in range(2):
            body = {"event": f"e{i}", "userId": "u"}
            status, _, _ = await post(session, webhook_url(stack.http, src), body)
            assert status == 202
        status, _, _ = await post(session, f"{stack.http}/v1/sources/in_missing", {})
        assert status == 404
        workspace = src.name.split("/")[1]

        async def dead_lettered() -> bool:
            text = await scrape()
            return _value(text, "fnbox_dlq_size", workspace=workspace) == 2

        await eventually(dead_lettered, within=30, what="two dead letters counted")
        assert stack.pipeline.telemetry is not None
        await stack.pipeline.telemetry.sample()
        text = await scrape()
        # The control service's own endpoint serves the same process's metrics.
        assert stack.service.observability is not None
        address = stack.service.observability.metrics_address
        control_text = await scrape(f"http://{address}/metrics")

    assert _value(text, "fnbox_gateway_requests_total", status="202") == accepted + 2
    assert _value(text, "fnbox_gateway_requests_total", status="404") >= 1
    source_fn = src.function.rsplit("/", 1)[-1]
    assert _value(text, "fnbox_invocations_total", function=source_fn, outcome="OK") == 2
    assert _value(text, "fnbox_invocations_total", function=fn.id, outcome="VALIDATION_ERROR") == 2
    assert _value(text, "fnbox_invocation_duration_seconds_count", function=fn.id) == 2
    assert _value(text, "fnbox_invocation_duration_seconds_bucket", function=fn.id, le="+Inf") == 2
    assert _value(text, "fnbox_delivery_attempts_total", verdict="FAIL") >= 2
    assert _value(text, "fnbox_executor_workers", state="total") >= 2
    assert 'fnbox_executor_workers{state="warm"}' in text
    assert "fnbox_executor_in_flight " in text
    assert re.search(r'fnbox_bus_pending\{topic="webhooks\.in_\w+",group="gateway"\} 0', text)
    assert re.search(r'fnbox_bus_pending\{topic="deliveries\.in_\w+",group="delivery"\} 0', text)
    assert 'fnbox_executor_workers{state="total"}' in control_text
