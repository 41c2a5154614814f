"""One sqlite3 connection owned by one thread, so the event loop never blocks on SQLite.

Operations submitted during one turn of the event loop reach the thread as one batch (one queue
put, one wakeup of the thread), and the results of a batch come back in one callback per event
loop (one ``call_soon_threadsafe`` wakeup), however many operations it held. Operations queued
while the thread was busy run together: reads first, outside any transaction, then all writes
in a single ``BEGIN IMMEDIATE … COMMIT`` (group commit); when one of them fails, the group runs
again with each in its own savepoint, so one failing operation does not undo the others. A
commit that holds a durable write runs with ``synchronous=FULL`` (fsync of the WAL); one holding
only bookkeeping (leases, acks) runs with ``synchronous=NORMAL``, which survives a killed
process but may lose the last commits on power loss — at worst a message is delivered once
more.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fnbox.bus.errors import BusClosed, BusError, BusUnavailable

__all__ = ["SqliteThread"]

T = TypeVar("T")
_MAX_GROUP = 512


@dataclass(slots=True)
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    write: bool
    durable: bool
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    outcome: tuple[bool, Any] = field(default=(False, None))


class SqliteThread:
    """Runs callables ``fn(connection)`` in the thread and returns their results."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float,
        init: Callable[[sqlite3.Connection], None],
        on_rollback: Callable[[], None] = lambda: None,
    ):
        """``on_rollback`` runs in the thread whenever writes were undone (to drop what was
        cached from them)."""
        self._path = path
        self._on_rollback = on_rollback
        self._busy_timeout = busy_timeout
        self._init = init
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        # Jobs submitted during the current turn of each event loop, sent at its end.
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self._synchronous = ""

    async def start(self) -> None:
        """Open the connection in a new thread and run ``init`` there."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name=f"fnbox-bus-sqlite:{self._path}", daemon=True
        )
        self._thread.start()
        await ready

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` outside a transaction (it must not write)."""
        return await self._submit(fn, write=False, durable=False)

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool) -> T:
        """Run ``fn`` inside a write transaction; returns once it is committed (fsync'd when
        ``durable``)."""
        return await self._submit(fn, write=True, durable=durable)

    async def stop(self) -> None:
        """Finish the queued operations, close the connection and join the thread."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):
            self._flush(asyncio.get_running_loop())
        self._jobs.put(None)
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def submit(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, durable: bool
    ) -> asyncio.Future[T]:
        """Queue ``fn`` (as :meth:`read` or :meth:`write` would) and return its future without
        awaiting it; must be called from the event loop's thread."""
        if self._closed or self._thread is None:
            raise BusClosed("the SQLite bus is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(fn=fn, write=write, durable=durable, future=future, loop=loop)
        pending = self._pending.get(loop)
        if pending is None:
            self._pending[loop] = [job]
            loop.call_soon(self._flush, loop)
        else:
            pending.append(job)
        return future

    async def _submit(
        self, fn: Callable[[sqlite3.Connection], T], *, write: bool, durable: bool
    ) -> T:
        return await self.submit(fn, write=write, durable=durable)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        jobs = self._pending.pop(loop, None)
        if jobs:
            self._jobs.put(jobs)

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_timeout)
            self._init(conn)
        except Exception as exc:
            error = _translate(exc)
            self._closed = True
            loop.call_soon_threadsafe(_settle, ready, (True, error))
            return
        loop.call_soon_threadsafe(_settle, ready, (False, None))
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            jobs = list(first)
            while len(jobs) < _MAX_GROUP:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.extend(more)
            for job in jobs:
                if not job.write:
                    job.outcome = _call(job.fn, conn)
            writes = [job for job in jobs if job.write]
            if writes:
                self._commit_group(conn, writes)
            _answer(jobs)
        # Whatever was queued after the stop marker fails (its callers are told, not left
        # waiting).
        closed = (True, BusClosed("the SQLite bus is closed"))
        while True:
            try:
                late = self._jobs.get_nowait()
            except queue.Empty:
                break
            for job in late or ():
                job.outcome = closed
            _answer(late or [])

    def _commit_group(self, conn: sqlite3.Connection, writes: list[_Job]) -> None:
        """All of ``writes`` in one transaction. They run back to back; should one fail, the
        transaction is rolled back and run again with each in its own savepoint, so the
        others still commit (the fast way saves two statements per operation)."""
        if not self._begin(conn, writes):
            return
        try:
            for job in writes:
                job.outcome = _call(job.fn, conn)
                if job.outcome[0]:
                    break
            else:
                conn.execute("COMMIT")
                return
            conn.execute("ROLLBACK")
        except Exception as exc:
            self._rollback(conn)
            for job in writes:
                job.outcome = (True, _translate(exc))
            return
        self._on_rollback()
        if len(writes) > 1:
            self._commit_each(conn, writes)

    def _commit_each(self, conn: sqlite3.Connection, writes: list[_Job]) -> None:
        if not self._begin(conn, writes):
            return
        try:
            for job in writes:
                conn.execute("SAVEPOINT op")
                job.outcome = _call(job.fn, conn)
                if job.outcome[0]:
                    conn.execute("ROLLBACK TO op")
                    self._on_rollback()
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback(conn)
            for job in writes:
                job.outcome = (True, _translate(exc))

    def _begin(self, conn: sqlite3.Connection, writes: list[_Job]) -> bool:
        try:
            self._set_synchronous(conn, "FULL" if any(j.durable for j in writes) else "NORMAL")
            conn.execute("BEGIN IMMEDIATE")
        except Exception as exc:
            for job in writes:
                job.outcome = (True, _translate(exc))
            return False
        return True

    def _rollback(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        self._on_rollback()

    def _set_synchronous(self, conn: sqlite3.Connection, mode: str) -> None:
        if mode != self._synchronous:
            conn.execute(f"PRAGMA synchronous={mode}")
            self._synchronous = mode


def _call(fn: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection) -> tuple[bool, Any]:
    try:
        return False, fn(conn)
    except Exception as exc:
        return True, _translate(exc)


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, BusError):
        return exc
    if isinstance(exc, sqlite3.OperationalError):
        error: Exception = BusUnavailable(f"SQLite bus: {exc}")
    elif isinstance(exc, sqlite3.Error):
        error = BusError(f"SQLite bus: {exc}")
    else:
        return exc
    error.__cause__ = exc
    return error


def _answer(jobs: list[_Job]) -> None:
    """Hand the outcomes back: one callback per event loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, done in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(_settle_jobs, done)


def _settle_jobs(jobs: list[_Job]) -> None:
    for job in jobs:
        _settle(job.future, job.outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    failed, value = outcome
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)
