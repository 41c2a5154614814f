"""The process's tracer and meter providers, built once from the ``telemetry`` settings.

Spans and metrics go to the OTLP collector when ``otlp_endpoint`` is set. Metrics are also
kept for the Prometheus scrape endpoint (:mod:`fnbox.telemetry.prometheus`), read on demand.
Both readers add the hot paths' histograms (:mod:`fnbox.telemetry.histograms`) to what the SDK
collects.
Instruments everywhere come from the global providers (``trace.get_tracer`` /
``metrics.get_meter`` proxies), so :func:`install` must run before work starts, once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from fnbox.telemetry.histograms import ExportReader, ScrapeReader
from fnbox.telemetry.settings import TelemetrySettings
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased

__all__ = ["Telemetry", "install", "installed"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Telemetry:
    """The installed providers and the reader behind ``GET /metrics``."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    scrape_reader: InMemoryMetricReader
    exporting: bool
    _shut_down: bool = False

    def shutdown(self) -> None:
        """Flush and stop the exporters (last step of a shutdown); later calls do nothing."""
        if self._shut_down:
            return
        self._shut_down = True
        try:
            self.tracer_provider.shutdown()
        finally:
            self.meter_provider.shutdown()


_installed: Telemetry | None = None


def installed() -> Telemetry | None:
    """The providers :func:`install` made in this process, if any."""
    return _installed


def install(
    settings: TelemetrySettings,
    *,
    service_name: str | None = None,
    record_spans: bool = False,
) -> Telemetry:
    """Build the providers from ``settings`` and make them the process-wide ones.

    Once per process: a later call returns the first one unchanged (one ``fnbox serve``
    process runs the control service, the gateway and the delivery workers on one set).
    A tracer provider set before by someone else is kept and given the exporters.

    Spans are recorded only when something exports them (OTLP, console) or ``record_spans``
    (a span processor will be added, e.g. by tests); otherwise they are not sampled: trace
    context still flows (ids in logs, ``traceparent`` on fetch) at a fifth of the cost.
    """
    global _installed
    if _installed is not None:
        return _installed
    resource = Resource.create(
        {
            "service.name": service_name or settings.service_name,
            "service.instance.id": uuid.uuid4().hex,
        }
    )
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        tracer_provider = current
    else:
        endpoint = settings.otlp_endpoint
        sampler: Sampler = (
            ParentBased(TraceIdRatioBased(settings.trace_sample_rate))
            if endpoint or settings.console or record_spans
            else ALWAYS_OFF
        )
        tracer_provider = TracerProvider(resource=resource, sampler=sampler)
        trace.set_tracer_provider(tracer_provider)
    interval_ms = settings.export_interval_s * 1000
    readers: list[MetricReader] = []
    scrape = ScrapeReader(resource)
    readers.append(scrape)
    endpoint = settings.otlp_endpoint
    if endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = endpoint.startswith("http://")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint, insecure=insecure),
                schedule_delay_millis=interval_ms,
            )
        )
        readers.append(
            ExportReader(
                OTLPMetricExporter(endpoint=endpoint, insecure=insecure),
                resource,
                export_interval_millis=interval_ms,
            )
        )
        log.info("exporting traces and metrics to %s", endpoint)
    if settings.console:
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    metrics.set_meter_provider(meter_provider)
    _installed = Telemetry(tracer_provider, meter_provider, scrape, exporting=bool(endpoint))
    return _installed
