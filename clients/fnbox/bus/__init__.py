"""fnbox's durable event bus: the pipeline's only storage between gateway and delivery.

``open_bus(url)`` picks the backend from the URL; call ``await bus.start()`` (or use
``async with``) before anything else.

- ``sqlite:///relative/bus.db`` or ``sqlite:////absolute/bus.db``: the embedded bus
  (:mod:`fnbox.bus.sqlite`); query options ``poll_interval``, ``compact_interval``,
  ``dedup_window``, ``busy_timeout`` (seconds).
- ``nats://host:port[,nats://host2:port]``: NATS JetStream (:mod:`fnbox.bus.jetstream`); query
  options ``max_age``, ``dedup_window``, ``request_timeout``, ``connect_timeout`` (seconds),
  ``max_ack_pending``, ``replicas``.

Topics are dotted tokens of ``[A-Za-z0-9_-]`` (``webhooks.<source instance>``,
``events.<source>``, ``deliveries.<destination instance>``); groups and namespaces are single
tokens. The guarantees are in :mod:`fnbox.bus.base`.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fnbox.bus.base import Bus, Delivery, Message, PublishItem
from fnbox.bus.errors import BusClosed, BusError, BusUnavailable, InvalidName

__all__ = [
    "Bus",
    "BusClosed",
    "BusError",
    "BusUnavailable",
    "Delivery",
    "InvalidName",
    "Message",
    "PublishItem",
    "open_bus",
]


def open_bus(url: str, *, namespace: str = "fnbox") -> Bus:
    """A bus for ``url`` (not started yet); ``ValueError`` for a malformed URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from fnbox.bus.sqlite import SqliteBus, SqliteOptions

        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if parts.netloc or not path:
            raise ValueError(f"bus URL {url!r}: expected sqlite:///relative or sqlite:////absolute")
        return SqliteBus(
            path, namespace=namespace, options=_options(SqliteOptions, parts.query, url)
        )
    if parts.scheme in ("nats", "tls"):
        from fnbox.bus.jetstream import JetStreamBus, NatsOptions

        hosts = [h for h in url.split("?", 1)[0].split(",") if h]
        servers = [h if "://" in h else f"{parts.scheme}://{h}" for h in hosts]
        return JetStreamBus(
            servers, namespace=namespace, options=_options(NatsOptions, parts.query, url)
        )
    raise ValueError(f"bus URL {url!r}: the scheme must be sqlite:// or nats://")


def _options(cls: Any, query: str, url: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in parse_qsl(query, keep_blank_values=True):
        field = fields.get(key)
        if field is None:
            raise ValueError(f"bus URL {url!r}: unknown option {key!r} (known: {sorted(fields)})")
        kind = int if field.type in ("int", int) else float
        try:
            values[key] = kind(raw)
        except ValueError as exc:
            raise ValueError(f"bus URL {url!r}: {key} must be a number") from exc
    return cls(**values)
