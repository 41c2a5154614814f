"""The gateway's settings section (built by a settings root in ``main()``, passed in)."""

from __future__ import annotations

from fnbox.delivery.backoff import Backoff
from pydantic import BaseModel, Field

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseModel):
    """Webhook ingestion and source-function processing."""

    listen: str = Field(
        default="127.0.0.1:8080", description="HOST:PORT the webhook HTTP server listens on."
    )
    public_url: str = Field(
        default="",
        description="Base URL webhooks are posted to, as senders see it; empty means "
        "http://<listen>.",
    )
    max_body_bytes: int = Field(
        default=512 * 1024, description="Largest accepted webhook body (413)."
    )
    max_in_flight: int = Field(
        default=1024, description="Webhooks being stored at once; more are refused with 429."
    )
    max_backlog: int = Field(
        default=100_000,
        description="Unprocessed webhooks per source instance above which new ones get 429.",
    )
    instance_cache_seconds: float = Field(
        default=2.0, description="How long an instance lookup is reused (enable/disable latency)."
    )
    consume_batch: int = Field(default=64, description="Webhooks taken from the bus per fetch.")
    concurrency: int = Field(
        default=64, description="Source invocations in flight per source instance (per replica)."
    )
    lease_seconds: float = Field(
        default=60.0, description="How long a taken webhook is reserved before another worker may."
    )
    discovery_seconds: float = Field(
        default=1.0, description="How often the bus is scanned for new source topics."
    )
    retry_attempts: int = Field(
        default=6, description="Attempts of a webhook whose source function retries or times out."
    )
    retry_first_min_seconds: float = Field(default=60.0, description="Shortest first retry delay.")
    retry_first_max_seconds: float = Field(default=180.0, description="Longest first retry delay.")
    retry_multiplier: float = Field(
        default=2.0, description="Growth of the delay between attempts."
    )
    retry_max_seconds: float = Field(default=1200.0, description="Longest delay between attempts.")
    platform_retry_seconds: float = Field(
        default=2.0, description="Delay before retrying when the control service is unreachable."
    )

    def base_url(self) -> str:
        """Where senders post webhooks, without a trailing slash."""
        return (self.public_url or f"http://{self.listen}").rstrip("/")

    def backoff(self) -> Backoff:
        """The retry policy of source invocations."""
        return Backoff(
            first_min=self.retry_first_min_seconds,
            first_max=self.retry_first_max_seconds,
            multiplier=self.retry_multiplier,
            max_delay=self.retry_max_seconds,
            max_attempts=self.retry_attempts,
        )
