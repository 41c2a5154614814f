"""The control service's ``telemetry`` section: tracing and metrics (shared with the gateway
and delivery processes) plus usage metering and function logs."""

from __future__ import annotations

from fnbox.telemetry.settings import TelemetrySettings as ProcessTelemetrySettings
from pydantic import Field

__all__ = ["TelemetrySettings"]


class TelemetrySettings(ProcessTelemetrySettings):
    """OpenTelemetry traces and metrics, usage metering and function logs."""

    usage_flush_s: float = Field(
        default=10.0,
        gt=0,
        description="How often accumulated execution time is written to the store (and on "
        "shutdown).",
    )
    logs_max_errors: int = Field(
        default=100, ge=0, description="Most recent failed invocations kept per function."
    )
    logs_max_samples: int = Field(
        default=100,
        ge=0,
        description="Most recent sampled successful invocations kept per function.",
    )
    logs_retention_days: float = Field(
        default=30.0, gt=0, description="Log entries older than this are deleted."
    )
    logs_sample_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Fraction of successful invocations kept in the logs (0: none).",
    )
    logs_max_input_bytes: int = Field(
        default=64 * 1024, ge=0, description="An entry's input is cut to this many bytes."
    )
    logs_flush_s: float = Field(
        default=1.0, gt=0, description="How often new log entries are written to the store."
    )
    logs_tail_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="How often a live tail looks for entries stored by other replicas.",
    )
    gauges_interval_s: float = Field(
        default=15.0, gt=0, description="How often store-backed gauges (DLQ size) are refreshed."
    )
