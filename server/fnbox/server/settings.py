"""The one settings root of fnbox (``FNBOX_`` environment, ``__`` between sections, optional
TOML file named by ``FNBOX_CONFIG``). Only ``main()`` builds it; components take sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fnbox.delivery.settings import DeliverySettings
from fnbox.executor.settings import ExecutorSettings
from fnbox.gateway.settings import GatewaySettings
from fnbox.server.observability.settings import TelemetrySettings as TelemetrySettings
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class GrpcSettings(BaseModel):
    """The control service's gRPC endpoint."""

    listen: str = Field(
        default="127.0.0.1:50051", description="HOST:PORT the control service listens on."
    )
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest gRPC message, both directions."
    )
    shutdown_grace_s: float = Field(
        default=10.0, ge=0, description="Time in-flight RPCs get to finish on shutdown."
    )
    stream_concurrency: int = Field(
        default=64, ge=1, description="Invocations in flight per InvokeStream(Batch) call."
    )
    reflection: bool = Field(default=True, description="Serve the gRPC reflection service.")


class StoreSettings(BaseModel):
    """Where the registry lives."""

    url: str = Field(
        default="",
        description="Empty: SQLite file registry.db under the data directory; "
        "postgresql://… for a shared PostgreSQL (scale-out).",
    )
    cache_ttl_s: float = Field(
        default=1.0,
        ge=0,
        description="How long the reads of the invoke path (tokens, instances, functions, "
        "versions) are reused. Writes through this replica drop them at once; other replicas' "
        "writes are seen within this time. 0 disables the cache.",
    )


class BusSettings(BaseModel):
    """The event bus between gateway, control service and delivery workers."""

    url: str = Field(
        default="",
        description="Empty: SQLite outbox under the data directory; nats://… for JetStream.",
    )
    namespace: str = Field(
        default="fnbox", description="Prefix isolating this deployment's topics on the bus."
    )


class AuthSettings(BaseModel):
    """Tokens and encryption of secrets at rest."""

    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64, 32 bytes) encrypting sensitive values at rest; "
        "empty: generated once into <data dir>/secret.key (mode 0600).",
    )
    bootstrap_workspace: str = Field(
        default="Default", description="Display name of the workspace made on first start."
    )


class ServeSettings(BaseModel):
    """How ``fnbox serve`` runs the webhook pipeline beside the control service."""

    pipeline_in_process: bool = Field(
        default=False,
        description="Run the webhook gateway and delivery workers inside the fnbox serve "
        "process (one process, one core for everything) instead of in a child process of it "
        "(its own core; restarted if it dies).",
    )
    pipeline_stop_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="On shutdown, how long the pipeline child process gets to finish in-flight "
        "work after SIGTERM before it is killed (unfinished work is redelivered from the bus).",
    )


class Settings(BaseSettings):
    """Every setting of fnbox."""

    model_config = SettingsConfigDict(
        env_prefix="FNBOX_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path(".fnbox"), description="Directory of the SQLite files, keys and admin token."
    )
    grpc: GrpcSettings = Field(default_factory=GrpcSettings, description="gRPC server.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Registry store.")
    bus: BusSettings = Field(default_factory=BusSettings, description="Event bus.")
    executor: ExecutorSettings = Field(
        default_factory=ExecutorSettings, description="Node worker pool."
    )
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="Webhook gateway."
    )
    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings, description="Delivery workers."
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="Tracing, metrics, usage and logs."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Auth and secrets.")
    serve: ServeSettings = Field(
        default_factory=ServeSettings, description="Process model of fnbox serve."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments beat the environment, which beats the TOML file (when one is configured).
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(*, config_file: str | None = None, **overrides: Any) -> Settings:
    """Settings from ``overrides`` (e.g. command-line options, nested as dicts), the
    environment and ``config_file`` (TOML), in that order of precedence."""
    if not config_file:
        return Settings(**overrides)

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    return FileSettings(**overrides)
