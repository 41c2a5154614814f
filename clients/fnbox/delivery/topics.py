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
    scan; its topic stays owned until then. A task that returns (its topic retired) is
    forgotten: the topic gets a new one if it appears again.
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
        self._returned_lately: set[str] = set()  # topics whose task returned since the scan began
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
            self._returned_lately.clear()
            try:
                for topic in await self._bus.topics(self._prefix):
                    # A listing read before the topic was retired must not restart its worker.
                    if not self._returned_since_listing(topic):
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
        task = asyncio.create_task(self._work(topic), name=f"{self._name}:{topic}")
        task.add_done_callback(lambda done: self._returned(topic, done))
        self._tasks[topic] = task

    def _returned(self, topic: str, task: asyncio.Task[None]) -> None:
        if not _returned_normally(task):
            return  # a failed task stays until the next scan logs and restarts it
        self._returned_lately.add(topic)
        if self._tasks.get(topic) is task:
            del self._tasks[topic]

    def _returned_since_listing(self, topic: str) -> bool:
        task = self._tasks.get(topic)  # returned, its done callback not run yet
        return topic in self._returned_lately or (task is not None and _returned_normally(task))


def _returned_normally(task: asyncio.Task[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
