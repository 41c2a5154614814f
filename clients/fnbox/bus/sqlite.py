"""The embedded bus: one SQLite file in WAL mode, shareable by the processes of one host.

Publishing commits with ``synchronous=FULL`` before it returns, so an acknowledged message
survives ``kill -9`` and power loss. Consumers in this process are woken by an in-process
event when a message is published; messages published by other processes are found by polling
every ``poll_interval`` seconds (a cheap read, no lock). A background task compacts the file.

Calls made during one turn of the event loop are batched: the messages published to a topic go
in one statement per table, acks (and terms) in one, naks in one, and all of them reach the bus
thread together, to be committed in one transaction (each caller still waits for its own
commit). ``publish_and_ack`` deletes its leases in the insert's own write, so a consumer that
publishes what it made of a message acks it in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import orjson
from fnbox.bus.base import Bus, Delivery, Message, PublishItem
from fnbox.bus.errors import BusClosed
from fnbox.bus.names import check_group, check_namespace, check_topic
from fnbox.bus.sqlite_tables import BusTables, LeasedRow, StoredItem, init_schema
from fnbox.bus.sqlite_thread import SqliteThread

__all__ = ["SqliteBus", "SqliteOptions"]

log = logging.getLogger(__name__)

_MAX_NAMES = 10_000  # topics whose qualified name is remembered (a bound, not a working set)


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
        # (topic, group) whose last lease got messages: the next consume leases at once.
        self._hot: set[tuple[str, str]] = set()
        # Publishes and settlements of this turn of the loop, sent together at its end.
        self._outbox: dict[str, _Outbox] = {}
        self._settling: _Settling | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._names: dict[str, str] = {}  # topic -> its qualified name, once checked

    async def start(self) -> None:
        if self._db is not None:
            return
        timeout = self._options.busy_timeout
        db = SqliteThread(
            self._path,
            busy_timeout=timeout,
            init=lambda c: init_schema(c, timeout),
        )
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
        (seq,) = await self._publish(topic, [(data, headers, dedup_id)], [])
        return str(seq)

    async def publish_many(self, topic: str, items: Sequence[PublishItem]) -> list[str]:
        if not items:
            self._qualified(topic)
            return []
        seqs = await self._publish(topic, items, [])
        return [str(seq) for seq in seqs]

    async def publish_and_ack(
        self, topic: str, items: Sequence[PublishItem], deliveries: Sequence[Delivery]
    ) -> list[str]:
        """The acks of this bus's deliveries go in the insert's own write: one transaction."""
        if not items:
            await self.ack_many(deliveries)
            self._qualified(topic)
            return []
        leases, mine, others = self._leases(deliveries)
        seqs = await self._publish(topic, items, leases)
        for own in mine:
            own._settled = True
        for other in others:
            await other.ack()
        return [str(seq) for seq in seqs]

    def _publish(
        self, topic: str, items: Sequence[PublishItem], acks: list[tuple[int, str, int]]
    ) -> asyncio.Future[list[int]]:
        """Queue ``items`` (and the leases ``acks`` to delete in the same write) for this turn
        of the loop's insert into ``topic``; the future gets their sequence numbers."""
        name = self._qualified(topic)
        db = self._thread()
        loop = asyncio.get_running_loop()
        outbox = self._outbox.get(name)
        if outbox is None:
            outbox = self._outbox[name] = _Outbox()
            loop.call_soon(self._send_outbox, db, name)
        stored = outbox.items
        start = len(stored)
        for data, headers, dedup_id in items:
            stored.append((bytes(data), _encode(headers) if headers else None, dedup_id))
        if acks:
            outbox.acks.extend(acks)
        future: asyncio.Future[list[int]] = loop.create_future()
        outbox.waiters.append((start, len(stored), future))
        return future

    def _send_outbox(self, db: SqliteThread, name: str) -> None:
        outbox = self._outbox.pop(name)
        stored, acks, window, tables = (
            outbox.items,
            outbox.acks,
            self._options.dedup_window,
            self._tables,
        )

        def write(conn: sqlite3.Connection) -> list[int]:
            seqs = tables.insert(conn, name, stored, now=time.time(), dedup_window=window)
            if acks:
                BusTables.settle(conn, acks)
            return seqs

        try:
            job = db.submit(write, write=True, durable=True)
        except Exception as exc:
            for _, _, future in outbox.waiters:
                if not future.done():
                    future.set_exception(exc)
            return

        def done(job: asyncio.Future[list[int]]) -> None:
            error = None if job.cancelled() else job.exception()
            if error is None:
                self._wake(name)
                seqs = job.result()
            for start, end, future in outbox.waiters:
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(seqs[start:end])

        job.add_done_callback(done)

    async def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        leases, mine, others = self._leases(deliveries)
        if leases:
            await self._settle(leases)
            for own in mine:
                own._settled = True
        for other in others:
            await other.ack()

    def _leases(
        self, deliveries: Sequence[Delivery]
    ) -> tuple[list[tuple[int, str, int]], list[_SqliteDelivery], list[Delivery]]:
        """The leases of this bus's unsettled ``deliveries``, those deliveries, and the rest."""
        leases: list[tuple[int, str, int]] = []
        mine: list[_SqliteDelivery] = []
        others: list[Delivery] = []
        for delivery in deliveries:
            if isinstance(delivery, _SqliteDelivery) and delivery._bus is self:
                if not delivery._settled:
                    leases.append((delivery._tid, delivery._group, delivery._seq))
                    mine.append(delivery)
            else:
                others.append(delivery)
        return leases, mine, others

    def _settle(
        self,
        leases: list[tuple[int, str, int]],
        postponed: list[tuple[float, int, str, int, int]] | None = None,
    ) -> asyncio.Future[None]:
        """Delete ``leases`` (acks, terms) and postpone ``postponed`` (naks) at the end of this
        turn of the loop, with the others settled during it (one write)."""
        db = self._thread()
        loop = asyncio.get_running_loop()
        settling = self._settling
        if settling is None:
            settling = self._settling = _Settling()
            loop.call_soon(self._send_settling, db)
        settling.leases.extend(leases)
        if postponed:
            settling.postponed.extend(postponed)
        future: asyncio.Future[None] = loop.create_future()
        settling.waiters.append(future)
        return future

    def _send_settling(self, db: SqliteThread) -> None:
        settling, self._settling = self._settling, None
        assert settling is not None
        leases, postponed = settling.leases, settling.postponed

        def write(conn: sqlite3.Connection) -> None:
            if leases:
                BusTables.settle(conn, leases)
            if postponed:
                BusTables.postpone(conn, postponed)

        try:
            job = db.submit(write, write=True, durable=False)
        except Exception as exc:
            for future in settling.waiters:
                if not future.done():
                    future.set_exception(exc)
            return

        def done(job: asyncio.Future[None]) -> None:
            error = None if job.cancelled() else job.exception()
            for future in settling.waiters:
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(None)

        job.add_done_callback(done)

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
        key = (name, group)
        # Lease at once (one round trip) when the last lease got something or a publish woke
        # us; otherwise a cheap read first, so idle polling never takes the write lock.
        eager = key in self._hot
        while True:
            wakeup = self._wakeups.setdefault(name, asyncio.Event())
            if eager:
                due, next_visible = True, None
            else:
                probed = await db.read(partial(tables.probe, tid=tid, topic=name, group=group))
                if probed is None:  # retired meanwhile (by any process)
                    tid = await self._rejoin(db, name, group)
                    continue
                due, next_visible = probed
            if due:
                leasing = partial(
                    tables.lease, tid=tid, topic=name, group=group, batch=batch, lease=lease
                )
                rows = await db.write(leasing, durable=False)
                if rows is None:
                    tid = await self._rejoin(db, name, group)
                    continue
                if rows:
                    self._hot.add(key)
                    return [self._delivery(row, topic, tid, group, lease) for row in rows]
                self._hot.discard(key)
                if eager:
                    eager = False
                    continue  # probe: when does the next lease become visible?
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            pause = min(remaining, self._options.poll_interval)
            if next_visible is not None:
                pause = min(pause, max(next_visible - time.time(), 0.001))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), pause)
                eager = True

    async def topics(self, prefix: str) -> list[str]:
        start = len(self._namespace) + 1
        names = await self._thread().read(
            lambda c: self._tables.topics(c, f"{self._namespace}.{prefix}")
        )
        return [name[start:] for name in names]

    async def retire(self, topic: str, group: str) -> bool:
        """In one write: the topic's rows go if ``group`` is its only group and has nothing
        pending there. Forgets what this process keeps of the topic; other processes find
        their ids stale at their next probe or lease."""
        name = self._qualified(topic)
        check_group(group)
        retired = await self._thread().write(
            lambda c: BusTables.retire(c, name, group), durable=False
        )
        if retired:
            self._joined.pop((name, group), None)
            self._hot.discard((name, group))
            self._wake(name)
            self._names.pop(topic, None)
        return retired

    async def pending(self, topic: str, group: str) -> int:
        name = self._qualified(topic)
        check_group(group)
        tables = self._tables

        def count(conn: sqlite3.Connection) -> int:
            tid = tables.topic_id(conn, name, create=False)
            return 0 if tid is None else tables.pending(conn, tid, group)

        return await self._thread().read(count)

    async def compact(self) -> int:
        """Delete what every group has settled now (also done periodically); returns the count.

        In steps of at most ``COMPACT_STEP`` rows, each its own write: a large backlog never
        holds up the writes (publishes, acks) queued meanwhile for more than one step."""
        window = self._options.dedup_window
        db = self._thread()
        total = 0
        more = True
        while more:
            deleted, more = await db.write(
                lambda c: BusTables.compact(c, now=time.time(), dedup_window=window),
                durable=False,
            )
            total += deleted
        return total

    def _delivery(self, row: LeasedRow, topic: str, tid: int, group: str, lease: float) -> Delivery:
        seq, data, encoded, published_at, attempt = row
        headers: dict[str, str] = orjson.loads(encoded) if encoded else {}
        message = Message(str(seq), topic, data, headers, attempt, published_at)
        return _SqliteDelivery(self, message, tid=tid, group=group, seq=seq, lease=lease)

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

    async def _rejoin(self, db: SqliteThread, name: str, group: str) -> int:
        """The topic id this group consumed by was retired (by any process): join afresh."""
        self._joined.pop((name, group), None)
        self._hot.discard((name, group))
        return await self._join(db, name, group)

    def _wake(self, name: str) -> None:
        wakeup = self._wakeups.pop(name, None)
        if wakeup is not None:
            wakeup.set()

    def _qualified(self, topic: str) -> str:
        # Checked once per topic: the pattern match ran for every publish and consume.
        name = self._names.get(topic)
        if name is None:
            name = f"{self._namespace}.{check_topic(topic)}"
            if len(self._names) < _MAX_NAMES:
                self._names[topic] = name
        return name

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
        await self._settle_once()

    async def term(self) -> None:
        await self._settle_once()

    async def nak(self, delay: float = 0) -> None:
        if self._settled:
            return
        await self._postpone(max(delay, 0.0))
        self._settled = True
        self._bus._wake(f"{self._bus._namespace}.{self.message.topic}")

    async def in_progress(self) -> None:
        if not self._settled:
            await self._postpone(self._lease)

    async def _settle_once(self) -> None:
        if self._settled:
            return
        await self._bus._settle([(self._tid, self._group, self._seq)])
        self._settled = True

    async def _postpone(self, delay: float) -> None:
        await self._bus._settle(
            [], [(time.time() + delay, self._tid, self._group, self._seq, self.message.attempt)]
        )


class _Outbox:
    """Messages published to one topic during this turn of the loop, the leases acked with
    them (:meth:`SqliteBus.publish_and_ack`), and who waits for them (``(start, end,
    future)``: the future gets the ids of ``items[start:end]``)."""

    __slots__ = ("acks", "items", "waiters")

    def __init__(self) -> None:
        self.items: list[StoredItem] = []
        self.acks: list[tuple[int, str, int]] = []  # leases deleted in the insert's write
        self.waiters: list[tuple[int, int, asyncio.Future[list[int]]]] = []


class _Settling:
    """Leases acked or termed (``leases``) and naked (``postponed``) during this turn of the
    loop, and who waits for them."""

    __slots__ = ("leases", "postponed", "waiters")

    def __init__(self) -> None:
        self.leases: list[tuple[int, str, int]] = []
        self.postponed: list[tuple[float, int, str, int, int]] = []
        self.waiters: list[asyncio.Future[None]] = []


def _encode(headers: Mapping[str, str]) -> bytes:
    return orjson.dumps(headers if type(headers) is dict else dict(headers))
