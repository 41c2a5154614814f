"""The delivery workers' settings section (built by a settings root, passed in)."""

from __future__ import annotations

from fnbox.delivery.backoff import Backoff
from pydantic import BaseModel, Field

__all__ = ["DeliverySettings"]


class DeliverySettings(BaseModel):
    """Routing events to destinations, batching, retries, isolation and replays."""

    enabled: bool = Field(default=True, description="Run delivery workers in `fnbox serve`.")
    routing_cache_seconds: float = Field(
        default=2.0, description="How long a source's list of connected destinations is reused."
    )
    router_batch: int = Field(
        default=256, description="Events the router takes from the bus per fetch."
    )
    discovery_seconds: float = Field(
        default=1.0, description="How often the bus is scanned for new event and delivery topics."
    )
    lease_seconds: float = Field(
        default=60.0, description="How long a taken message is reserved before another worker may."
    )
    batch_max_count: int = Field(
        default=20, description="Default onBatch size when the function's BatchOptions leave it 0."
    )
    batch_max_wait_seconds: float = Field(
        default=10.0,
        description="Default wait for a full onBatch batch (BatchOptions.max_wait_ms=0).",
    )
    concurrency: int = Field(
        default=16, description="Invocations in flight per destination instance (per replica)."
    )
    retry_first_seconds: float = Field(default=1.0, description="First retry delay (jittered).")
    retry_multiplier: float = Field(
        default=2.0, description="Growth of the delay between attempts."
    )
    retry_max_seconds: float = Field(default=600.0, description="Longest delay between attempts.")
    retry_max_age_seconds: float = Field(
        default=4 * 3600.0, description="How long an event is retried before it is dead-lettered."
    )
    breaker_failures: int = Field(
        default=5, description="Consecutive retryable failures that open a destination's breaker."
    )
    breaker_open_seconds: float = Field(
        default=5.0, description="How long an open breaker pauses a destination before a probe."
    )
    platform_retry_seconds: float = Field(
        default=1.0, description="Delay before retrying when the control service is unreachable."
    )
    replay_poll_seconds: float = Field(
        default=1.0, description="How often dead letters queued for replay are collected."
    )

    def backoff(self) -> Backoff:
        """The retry policy of destination and insert invocations."""
        return Backoff(
            first_min=self.retry_first_seconds / 2,
            first_max=self.retry_first_seconds,
            multiplier=self.retry_multiplier,
            max_delay=self.retry_max_seconds,
            max_age=self.retry_max_age_seconds,
        )
