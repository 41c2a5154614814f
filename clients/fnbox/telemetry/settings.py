"""The ``telemetry`` settings section of every fnbox process."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["TelemetrySettings"]


class TelemetrySettings(BaseModel):
    """OpenTelemetry traces and metrics."""

    service_name: str = Field(default="fnbox", description="service.name of exported telemetry.")
    otlp_endpoint: str = Field(
        default="",
        description="OTLP/gRPC collector for traces and metrics, e.g. http://127.0.0.1:4317; "
        "empty: no export.",
    )
    console: bool = Field(default=False, description="Also print finished spans to stdout.")
    trace_sample_rate: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="Fraction of webhooks (trace roots) whose traces are recorded and exported; "
        "the rest of a trace follows its root's decision.",
    )
    export_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="How often batched spans and metrics are sent to the OTLP collector.",
    )
    metrics_listen: str = Field(
        default="",
        description="HOST:PORT of a Prometheus scrape endpoint (GET /metrics) served by this "
        "process; empty: none (the gateway also serves /metrics on its HTTP port).",
    )
