"""One consumer task per bus topic of a kind, started as topics appear."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fnbox.bus import Bus
from fnbox.delivery.tasks import cancel_and_wait

__all__ = ["TopicWorkers"]

log = logging.getLogger(__name__)


class TopicWorkers:
    """Runs ``work(topic)`` once per topic under ``prefix`` (e.g. ``"deliveries."``).

    Topics are found by polling ``bus.topics(prefix)`` every ``interval`` seconds, or at once
    through :meth:`notice` (in-process producers). A task that fails is restarted at the next
    scan; its topic stays owned until then.
    """

    def __init__(
        self,
        bus: Bus,
        prefix: str,
        work: Callable[[str], Coroutine[Any, Any, None]],
        *,
        interval: float,
        name: str,
    ) -> None:
        self._bus = bus
        self._prefix = prefix
        self._work = work
        self._interval = interval
        self._name = name
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._scanner: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._scanner = asyncio.create_task(self._scan(), name=f"{self._name}-scan")

    def notice(self, topic: str) -> None:
        """A topic exists (just published to): start its worker now if it has none."""
        if self._scanner is not None:
            self._ensure(topic)

    async def stop(self) -> None:
        await cancel_and_wait(t for t in (self._scanner, *self._tasks.values()) if t is not None)
        self._tasks.clear()

    async def _scan(self) -> None:
        while True:
            try:
                for topic in await self._bus.topics(self._prefix):
                    self._ensure(topic)
            except Exception:
                log.warning("%s: could not list topics", self._name, exc_info=True)
            await asyncio.sleep(self._interval)

    def _ensure(self, topic: str) -> None:
        task = self._tasks.get(topic)
        if task is not None and not task.done():
            return
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("%s worker for %s failed", self._name, topic, exc_info=task.exception())
        self._tasks[topic] = asyncio.create_task(self._work(topic), name=f"{self._name}:{topic}")
