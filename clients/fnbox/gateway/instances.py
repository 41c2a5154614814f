"""A short-lived cache of source-instance lookups, so ingestion costs no RPC per webhook."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fnbox.client.errors import InvalidArgument, NotFound
from fnbox.delivery.control import ControlPlane
from fnbox.functions.v1 import resources_pb2

__all__ = ["InstanceCache", "SourceInstance"]


@dataclass(frozen=True, slots=True)
class SourceInstance:
    """What the gateway needs of a source instance (auth holds the secret in clear)."""

    name: str
    id: str
    enabled: bool
    is_source: bool
    auth: resources_pb2.WebhookAuth
    insert_instance: str


class InstanceCache:
    """``lookup(id)`` → the instance, or None when it does not exist.

    Entries (including "does not exist") live ``ttl`` seconds; concurrent lookups of the same
    key share one RPC. RPC failures other than not-found propagate (the caller answers 503),
    unless a stale entry is at hand, which is then used.
    """

    def __init__(self, control: ControlPlane, ttl: float) -> None:
        self._control = control
        self._ttl = ttl
        self._entries: dict[str, tuple[float, SourceInstance | None]] = {}
        self._inflight: dict[str, asyncio.Future[SourceInstance | None]] = {}

    async def lookup(self, key: str) -> SourceInstance | None:
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry[0] < self._ttl:
            return entry[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[SourceInstance | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await self._fetch(key)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it
            if entry is not None:
                return entry[1]
            raise
        else:
            future.set_result(value)
            self._entries[key] = (time.monotonic(), value)
            return value
        finally:
            del self._inflight[key]

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)

    async def _fetch(self, key: str) -> SourceInstance | None:
        try:
            instance = await self._control.get_instance(key, reveal_webhook_secret=True)
        except (NotFound, InvalidArgument):
            return None
        return SourceInstance(
            name=instance.name,
            id=instance.id,
            enabled=instance.enabled,
            is_source=instance.function_type == resources_pb2.FUNCTION_TYPE_SOURCE,
            auth=instance.webhook_auth,
            insert_instance=instance.insert_instance,
        )
