"""The e2e floor: a bare durable webhook relay in one Python process, with no functions.

Run as ``python -m bench.relay_floor SINK_URL``; it prints ``port N`` once it listens on
127.0.0.1. ``POST /v1/sources/<anything>`` stores the body in SQLite (WAL, ``synchronous=FULL``,
writes of concurrent requests grouped into one transaction by a writer thread, as fnbox's bus
does) and answers 202 once committed. A delivery task reads the stored bodies back in order,
POSTs each to ``SINK_URL`` over 16 keep-alive connections (at most 16 in flight, fnbox's default
delivery concurrency) and deletes the delivered ones.

It is the least a Python service must do to relay webhooks durably: aiohttp's low-level server
(as fnbox's gateway), one fsync'd write per group, one read, one POST and one delete per event.
What fnbox adds on top: the source and destination functions (two invocations on Node workers
through the gRPC control service), the bus's leases, retries and dedup, routing, telemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bench.sink import next_message

_Job = tuple[Callable[[sqlite3.Connection], Any], bool, "asyncio.Future[Any]"]
_IN_FLIGHT = 16
_READ_BATCH = 256
_INSERT = "INSERT INTO q (body) VALUES (?)"


class Store:
    """SQLite on a writer thread: every job queued while a group runs joins the next group,
    whose writes commit in one transaction."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        threading.Thread(target=self._serve, name="relay-sqlite", daemon=True).start()

    def run(self, fn: Callable[[sqlite3.Connection], Any], *, write: bool) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self._loop.create_future()
        self._jobs.put((fn, write, future))
        return future

    def _serve(self) -> None:
        conn = self._conn
        while True:
            jobs = [self._jobs.get()]
            with contextlib.suppress(queue.Empty):
                while len(jobs) < 512:
                    jobs.append(self._jobs.get_nowait())
            outcomes = [_call(fn, conn, future) for fn, write, future in jobs if not write]
            writes = [(fn, future) for fn, write, future in jobs if write]
            if writes:
                conn.execute("BEGIN IMMEDIATE")
                outcomes += [_call(fn, conn, future) for fn, future in writes]
                conn.execute("COMMIT")
            self._loop.call_soon_threadsafe(_settle, outcomes)


def _call(
    fn: Callable[[sqlite3.Connection], Any], conn: sqlite3.Connection, future: asyncio.Future[Any]
) -> tuple[asyncio.Future[Any], bool, Any]:
    try:
        return future, False, fn(conn)
    except Exception as exc:
        return future, True, exc


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, failed, value in outcomes:
        if not future.done():
            if failed:
                future.set_exception(value)
            else:
                future.set_result(value)


class SinkConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to the sink, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = b""
        self._waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        message = next_message(self._buffer)
        if message is None:
            return
        head, body = message
        self._buffer = self._buffer[len(head) + 4 + len(body) :]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(int(head.split(" ", 2)[1]))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the sink closed the connection"))

    async def post(self, request_head: bytes, body: bytes) -> int:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request_head % len(body) + body)
        return await self._waiter


def _insert(conn: sqlite3.Connection, body: bytes) -> None:
    conn.execute(_INSERT, (body,))


def _delete(conn: sqlite3.Connection, ids: list[int]) -> None:
    conn.executemany("DELETE FROM q WHERE id = ?", [(row_id,) for row_id in ids])


async def deliver(store: Store, sink_url: str, stored: asyncio.Event) -> None:
    """Read stored bodies in order, POST each to the sink, delete what was delivered."""
    loop = asyncio.get_running_loop()
    url = urlsplit(sink_url)
    head = (
        f"POST {url.path or '/'} HTTP/1.1\r\nhost: {url.netloc}\r\n"
        "content-type: application/json\r\ncontent-length: %d\r\n\r\n"
    ).encode()
    idle: asyncio.Queue[SinkConnection] = asyncio.Queue()
    for _ in range(_IN_FLIGHT):
        _, conn = await loop.create_connection(SinkConnection, url.hostname or "", url.port or 80)
        idle.put_nowait(conn)
    last = 0
    pending: set[asyncio.Task[None]] = set()
    delivered: list[int] = []

    async def post(row_id: int, body: bytes) -> None:
        conn = await idle.get()
        try:
            await conn.post(head, body)  # every answer counts: the sink always says 200
        finally:
            idle.put_nowait(conn)
        delivered.append(row_id)

    while True:

        def read(conn: sqlite3.Connection, after: int = last) -> list[tuple[int, bytes]]:
            query = "SELECT id, body FROM q WHERE id > ? ORDER BY id LIMIT ?"
            return conn.execute(query, (after, _READ_BATCH)).fetchall()

        stored.clear()
        rows = await store.run(read, write=False)
        if not rows:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stored.wait()
            continue
        last = rows[-1][0]
        for row_id, body in rows:
            task = asyncio.create_task(post(row_id, body))
            pending.add(task)
            task.add_done_callback(pending.discard)
            while len(pending) >= _IN_FLIGHT:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if delivered:
            done, delivered = delivered, []
            store.run(functools.partial(_delete, ids=done), write=True)


async def serve(sink_url: str) -> None:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="fnbox-relay-floor-") as tmp:
        store = Store(Path(tmp) / "relay.db", loop)
        stored = asyncio.Event()

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if request.method != "POST" or not request.path.startswith("/v1/sources/"):
                return web.Response(status=404)
            body = await request.read()
            await store.run(lambda c: _insert(c, body), write=True)
            stored.set()
            return web.Response(status=202, body=b'{"ok":true}', content_type="application/json")

        runner = web.ServerRunner(web.Server(handle, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        delivery = asyncio.create_task(deliver(store, sink_url, stored))
        sys.stdout.write(f"port {port}\n")
        sys.stdout.flush()
        try:
            await delivery
        finally:
            await runner.cleanup()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sys.argv[1]))


if __name__ == "__main__":
    main()
