"""fnbox's own histograms export what the SDK's Histogram would have, given the same records:
the ``/metrics`` text and an OTLP export (its protobuf request included)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from fnbox.telemetry import histograms
from fnbox.telemetry.histograms import ExportReader, FastHistogram, ScrapeReader
from fnbox.telemetry.prometheus import render
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.resources import Resource

BOUNDS = (0.001, 0.01, 0.1, 1.0)
NAME = "fnbox.test.duration"
UNIT = "s"
DESCRIPTION = "How long tests take."
# Values on bounds, between them, past the last one, and values the SDK drops.
RECORDS: list[tuple[float, tuple[str, str]]] = [
    (0.0, ("fn_a", "source")),
    (0.001, ("fn_a", "source")),
    (0.0042, ("fn_a", "source")),
    (0.1, ("fn_a", "source")),
    (7.5, ("fn_a", "source")),
    (0.05, ("fn_b", "destination")),
    (0.05, ("fn_b", "destination")),
    (-1.0, ("fn_b", "destination")),
    (math.nan, ("fn_b", "destination")),
    (math.inf, ("fn_c", "destination")),
]
RESOURCE = Resource.create({"service.name": "fnbox-test"})


class MemoryExporter(MetricExporter):
    """Keeps what it is given, as the OTLP exporter would send it."""

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def _ours() -> FastHistogram:
    return FastHistogram(
        NAME,
        scope="fnbox.test",
        unit=UNIT,
        description=DESCRIPTION,
        bounds=BOUNDS,
        labels=("function", "type"),
    )


def _scraped(records: Sequence[tuple[float, tuple[str, str]]]) -> str:
    """The ``/metrics`` text of a scrape reader whose only metric is our histogram of
    ``records``."""
    ours = _ours()
    for value, key in records:
        ours.record(value, key)
    reader = ScrapeReader(RESOURCE, [ours])
    MeterProvider(resource=RESOURCE, metric_readers=[reader])
    data = reader.get_metrics_data()
    assert data is not None
    return render(data)


def _sdk_data(records: Sequence[tuple[float, tuple[str, str]]], limit: int = 2000) -> MetricsData:
    """What the SDK's own Histogram collects from ``records``."""
    reader = InMemoryMetricReader(cardinality_limits={Histogram: limit})
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    sdk = provider.get_meter("fnbox.test").create_histogram(
        NAME, unit=UNIT, description=DESCRIPTION, explicit_bucket_boundaries_advisory=BOUNDS
    )
    for value, (function, kind) in records:
        sdk.record(value, {"function": function, "type": kind})
    data = reader.get_metrics_data()
    assert data is not None
    return data


def _otlp(data: MetricsData) -> list[dict[str, Any]]:
    """The scopes of ``data`` as the OTLP exporter sends them, without timestamps."""
    request = MessageToDict(encode_metrics(data))
    (resource_metrics,) = request["resourceMetrics"]
    scopes = resource_metrics["scopeMetrics"]
    for scope in scopes:
        for metric in scope["metrics"]:
            for point in metric.get("histogram", {}).get("dataPoints", []):
                point.pop("startTimeUnixNano")
                point.pop("timeUnixNano")
                point["attributes"].sort(key=lambda kv: kv["key"])
            metric.get("histogram", {}).get("dataPoints", []).sort(key=str)
    return [s for s in scopes if any(m["name"] == NAME for m in s["metrics"])]


def test_scrape_text_is_the_sdk_histograms() -> None:
    # No SDK metric at all: the scrape still has the histogram.
    text = _scraped(RECORDS)
    assert text == render(_sdk_data(RECORDS))
    assert (
        'fnbox_test_duration_seconds_bucket{function="fn_a",type="source",le="0.001"} 2\n' in text
    )
    assert 'fnbox_test_duration_seconds_bucket{function="fn_a",type="source",le="0.1"} 4\n' in text
    assert 'fnbox_test_duration_seconds_bucket{function="fn_a",type="source",le="+Inf"} 5\n' in text
    assert 'fnbox_test_duration_seconds_count{function="fn_b",type="destination"} 2\n' in text
    assert 'fnbox_test_duration_seconds_sum{function="fn_b",type="destination"} 0.1\n' in text
    assert "fn_c" not in text  # only an infinite value: dropped


def test_otlp_export_is_the_sdk_histograms_and_keeps_the_other_metrics() -> None:
    ours = _ours()
    exporter = MemoryExporter()
    reader = ExportReader(exporter, RESOURCE, [ours], export_interval_millis=math.inf)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("fnbox.test")
    meter.create_counter("fnbox.test.things").add(3)
    provider.get_meter("fnbox.other").create_counter("fnbox.other.things").add(1)
    for value, key in RECORDS:
        ours.record(value, key)
    reader.force_flush()
    (exported,) = exporter.exported

    names = {
        scope.scope.name: sorted(metric.name for metric in scope.metrics)
        for resource in exported.resource_metrics
        for scope in resource.scope_metrics
    }
    # In the meter's scope, next to its SDK metrics; the other scope untouched.
    assert names == {
        "fnbox.test": ["fnbox.test.duration", "fnbox.test.things"],
        "fnbox.other": ["fnbox.other.things"],
    }
    assert exported.resource_metrics[0].resource is RESOURCE
    (scope,) = _otlp(exported)
    (expected,) = _otlp(_sdk_data(RECORDS))
    ours_metric = next(m for m in scope["metrics"] if m["name"] == NAME)
    assert [ours_metric] == expected["metrics"]
    points = {
        p["attributes"][0]["value"]["stringValue"]: p
        for p in ours_metric["histogram"]["dataPoints"]
    }
    assert (
        ours_metric["histogram"]["aggregationTemporality"] == "AGGREGATION_TEMPORALITY_CUMULATIVE"
    )
    assert points["fn_a"]["count"] == "5"
    assert points["fn_a"]["bucketCounts"] == ["2", "1", "1", "0", "1"]
    assert points["fn_a"]["min"] == 0.0 and points["fn_a"]["max"] == 7.5
    assert points["fn_b"]["sum"] == 0.1

    # Cumulative: the next export counts everything since the start.
    ours.record(0.5, ("fn_b", "destination"))
    reader.force_flush()
    (scope,) = _otlp(exporter.exported[-1])
    (expected,) = _otlp(_sdk_data([*RECORDS, (0.5, ("fn_b", "destination"))]))
    assert [m for m in scope["metrics"] if m["name"] == NAME] == expected["metrics"]
    provider.shutdown()


def test_attribute_sets_past_the_limit_overflow_as_in_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(histograms, "CARDINALITY_LIMIT", 2)
    records = [(0.002 * i, (f"fn_{i % 4}", "source")) for i in range(12)]
    text = _scraped(records)
    assert text == render(_sdk_data(records, limit=2))
    assert 'fnbox_test_duration_seconds_count{otel_metric_overflow="True"} 6\n' in text


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="takes values of"):
        _ours().record(0.1, ("fn_a",))
