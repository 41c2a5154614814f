"""A short-lived memo of the reads every invocation makes (token, instance, function, version).

Each of those reads is a hop to the store's thread; on the invoke hot path they cost more than
the invocation itself. Entries live ``ttl_s`` and are all dropped as soon as the store reports
a write (its ``generation`` moved), so this replica never serves its own stale data; other
replicas' writes are seen within ``ttl_s``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fnbox.server.store.base import Store

T = TypeVar("T")


class ReadCache:
    def __init__(self, store: Store, *, ttl_s: float, max_entries: int = 50_000) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[tuple[str, object], tuple[float, Any]] = {}
        self._generation = store.generation

    async def get(self, kind: str, key: object, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``(kind, key)``, else ``await load()`` (then cached)."""
        if self._ttl_s <= 0:
            return await load()
        generation = self._store.generation
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
        now = time.monotonic()
        hit = self._entries.get((kind, key))
        if hit is not None and hit[0] > now:
            value: T = hit[1]
            return value
        value = await load()
        # A write that landed while we read may have made the value stale: keep it uncached.
        if self._store.generation == generation:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[(kind, key)] = (now + self._ttl_s, value)
        return value
