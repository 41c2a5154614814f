"""The embedded bus: one SQLite file in WAL mode, shareable by the processes of one host.

Publishing commits with ``synchronous=FULL`` before it returns, so an acknowledged message
survives ``kill -9`` and power loss. Consumers in this process are woken by an in-process
event when a message is published; messages published by other processes are found by polling
every ``poll_interval`` seconds (a cheap read, no lock). A background task compacts the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from fnbox.bus.base import Bus, Delivery, Message, PublishItem
from fnbox.bus.errors import BusClosed
from fnbox.bus.names import check_group, check_namespace, check_topic
from fnbox.bus.sqlite_tables import BusTables, LeasedRow, StoredItem, init_schema
from fnbox.bus.sqlite_thread import SqliteThread

__all__ = ["SqliteBus", "SqliteOptions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SqliteOptions:
    """Tuning of the SQLite bus (all in seconds); set from the URL's query string."""

    poll_interval: float = 0.1
    """How often an idle consumer looks for messages published by other processes."""
    compact_interval: float = 10.0
    """How often settled messages and expired dedup ids are deleted."""
    dedup_window: float = 600.0
    """How long a dedup id is remembered."""
    busy_timeout: float = 10.0
    """How long to wait for another process's write lock before failing."""


class SqliteBus(Bus):
    """See the module docstring. ``path`` is the database file (created if missing)."""

    def __init__(
        self, path: str, *, namespace: str = "fnbox", options: SqliteOptions | None = None
    ):
        self._path = path
        self._namespace = check_namespace(namespace)
        self._options = options or SqliteOptions()
        self._tables = BusTables()
        self._db: SqliteThread | None = None
        self._wakeups: dict[str, asyncio.Event] = {}
        self._joined: dict[tuple[str, str], int] = {}  # (topic, group) -> topic id
        self._compactor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._db is not None:
            return
        timeout = self._options.busy_timeout
        db = SqliteThread(self._path, busy_timeout=timeout, init=lambda c: init_schema(c, timeout))
        await db.start()
        self._db = db
        self._compactor = asyncio.create_task(self._compact_forever(), name="fnbox-bus-compact")

    async def close(self) -> None:
        db, self._db = self._db, None
        for name in list(self._wakeups):
            self._wake(name)  # waiting consumers return (with BusClosed) instead of polling on
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
            self._compactor = None
        if db is not None:
            await db.stop()

    async def publish(
        self,
        topic: str,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        dedup_id: str | None = None,
    ) -> str:
        (message_id,) = await self.publish_many(topic, [(data, headers, dedup_id)])
        return message_id

    async def publish_many(self, topic: str, items: Sequence[PublishItem]) -> list[str]:
        name = self._qualified(topic)
        if not items:
            return []
        stored = [
            StoredItem(bytes(data), orjson.dumps(dict(headers)) if headers else None, dedup_id)
            for data, headers, dedup_id in items
        ]
        window = self._options.dedup_window
        seqs = await self._thread().write(
            lambda c: self._tables.insert(c, name, stored, now=time.time(), dedup_window=window),
            durable=True,
        )
        self._wake(name)
        return [str(seq) for seq in seqs]

    async def consume(
        self, topic: str, group: str, *, batch: int, wait: float, lease: float
    ) -> list[Delivery]:
        name = self._qualified(topic)
        check_group(group)
        if batch < 1 or lease <= 0:
            raise ValueError("batch must be >= 1 and lease > 0")
        db = self._thread()
        tid = await self._join(db, name, group)
        tables = self._tables
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            wakeup = self._wakeups.setdefault(name, asyncio.Event())
            due, next_visible = await db.read(lambda c: tables.probe(c, tid, group, time.time()))
            if due:
                rows = await db.write(
                    lambda c: tables.lease(
                        c, tid, group, batch=batch, lease=lease, now=time.time()
                    ),
                    durable=False,
                )
                if rows:
                    return [self._delivery(row, topic, tid, group, lease) for row in rows]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            pause = min(remaining, self._options.poll_interval)
            if next_visible is not None:
                pause = min(pause, max(next_visible - time.time(), 0.001))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), pause)

    async def topics(self, prefix: str) -> list[str]:
        start = len(self._namespace) + 1
        names = await self._thread().read(
            lambda c: self._tables.topics(c, f"{self._namespace}.{prefix}")
        )
        return [name[start:] for name in names]

    async def pending(self, topic: str, group: str) -> int:
        name = self._qualified(topic)
        check_group(group)
        tables = self._tables

        def count(conn: sqlite3.Connection) -> int:
            tid = tables.topic_id(conn, name, create=False)
            return 0 if tid is None else tables.pending(conn, tid, group)

        return await self._thread().read(count)

    async def compact(self) -> int:
        """Delete what every group has settled now (also done periodically); returns the count."""
        window = self._options.dedup_window
        return await self._thread().write(
            lambda c: BusTables.compact(c, now=time.time(), dedup_window=window), durable=False
        )

    def _delivery(self, row: LeasedRow, topic: str, tid: int, group: str, lease: float) -> Delivery:
        headers: dict[str, str] = orjson.loads(row.headers) if row.headers else {}
        message = Message(str(row.seq), topic, row.data, headers, row.attempt, row.published_at)
        return _SqliteDelivery(self, message, tid=tid, group=group, seq=row.seq, lease=lease)

    async def _join(self, db: SqliteThread, name: str, group: str) -> int:
        # Registering the group before the first probe keeps compaction from deleting messages
        # this group has not seen while another group races ahead.
        tid = self._joined.get((name, group))
        if tid is not None:
            return tid
        tables = self._tables

        def join(conn: sqlite3.Connection) -> int:
            tid = tables.topic_id(conn, name, create=True)
            assert tid is not None
            tables.join_group(conn, tid, group)
            return tid

        tid = await db.write(join, durable=False)
        self._joined[(name, group)] = tid
        return tid

    def _wake(self, name: str) -> None:
        wakeup = self._wakeups.pop(name, None)
        if wakeup is not None:
            wakeup.set()

    def _qualified(self, topic: str) -> str:
        return f"{self._namespace}.{check_topic(topic)}"

    def _thread(self) -> SqliteThread:
        if self._db is None:
            raise BusClosed("the SQLite bus is not started (or closed)")
        return self._db

    async def _compact_forever(self) -> None:
        while True:
            await asyncio.sleep(self._options.compact_interval)
            try:
                deleted = await self.compact()
            except Exception:
                log.warning("bus compaction failed", exc_info=True)
            else:
                if deleted:
                    log.debug("bus compaction deleted %d messages", deleted)


class _SqliteDelivery(Delivery):
    __slots__ = ("_bus", "_group", "_lease", "_seq", "_settled", "_tid", "message")

    def __init__(
        self, bus: SqliteBus, message: Message, *, tid: int, group: str, seq: int, lease: float
    ) -> None:
        self.message = message
        self._bus = bus
        self._tid = tid
        self._group = group
        self._seq = seq
        self._lease = lease
        self._settled = False

    async def ack(self) -> None:
        await self._settle()

    async def term(self) -> None:
        await self._settle()

    async def nak(self, delay: float = 0) -> None:
        if self._settled:
            return
        await self._postpone(max(delay, 0.0))
        self._settled = True
        self._bus._wake(f"{self._bus._namespace}.{self.message.topic}")

    async def in_progress(self) -> None:
        if not self._settled:
            await self._postpone(self._lease)

    async def _settle(self) -> None:
        if self._settled:
            return
        tid, group, seq = self._tid, self._group, self._seq
        await self._bus._thread().write(
            lambda c: BusTables.settle(c, tid, group, seq), durable=False
        )
        self._settled = True

    async def _postpone(self, delay: float) -> None:
        tid, group, seq, attempt = self._tid, self._group, self._seq, self.message.attempt
        await self._bus._thread().write(
            lambda c: BusTables.postpone(c, tid, group, seq, attempt, time.time() + delay),
            durable=False,
        )
