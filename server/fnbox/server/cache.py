"""A short-lived memo of the reads every invocation makes (token, instance, function, version).

Each of those reads is a hop to the store's thread; on the invoke hot path they cost more than
the invocation itself. Entries live ``ttl_s`` and are all dropped as soon as the store reports
a write (its ``generation`` moved), so this replica never serves its own stale data; other
replicas' writes are seen within ``ttl_s``.

When an entry expires under load, every call in flight misses it at once: they share one
load (one hop to the store's thread, which otherwise wakes and contends for the GIL once per
caller), unless a write came in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fnbox.server.store.base import Store

T = TypeVar("T")


# What ``peek`` returns when it has no fresh value.
MISSING: Any = object()


def _retrieve(load: asyncio.Future[Any]) -> None:
    # Every caller of a failed load may have been cancelled: nobody else reads its error.
    if not load.cancelled():
        load.exception()


class ReadCache:
    def __init__(self, store: Store, *, ttl_s: float, max_entries: int = 50_000) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[tuple[str, object], tuple[float, Any]] = {}
        # Loads in flight (begun since the last write), by key.
        self._loading: dict[tuple[str, object], asyncio.Future[Any]] = {}
        self._generation = store.generation

    def peek(self, kind: str, key: object) -> Any:
        """The fresh cached value of ``(kind, key)``, else :data:`MISSING` (then ``get`` it):
        a hit without a coroutine and a loader closure, as the invoke path makes 2-3 per call."""
        hit = self._entries.get((kind, key))
        if (
            hit is not None
            and hit[0] > time.monotonic()
            and self._store.generation == self._generation
        ):
            return hit[1]
        return MISSING

    async def get(self, kind: str, key: object, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``(kind, key)``, else ``await load()`` (then cached)."""
        if self._ttl_s <= 0:
            return await load()
        generation = self._store.generation
        if generation != self._generation:
            self._entries.clear()
            self._loading.clear()  # begun before the write: they may miss it
            self._generation = generation
        now = time.monotonic()
        entry = (kind, key)
        hit = self._entries.get(entry)
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        loading = self._loading.get(entry)
        if loading is not None:
            shared: T = await asyncio.shield(loading)
            return shared
        loading = asyncio.ensure_future(load())
        loading.add_done_callback(_retrieve)
        self._loading[entry] = loading
        try:
            value = await asyncio.shield(loading)
        finally:
            if self._loading.get(entry) is loading:
                del self._loading[entry]
        # A write that landed while we read may have made the value stale: keep it uncached.
        if self._store.generation == generation:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[entry] = (now + self._ttl_s, value)
        return value
