"""The e2e floors: a bare durable webhook relay, with or without functions, with or without gRPC.

Run as ``python -m bench.relay_floor SINK_URL [--functions [--over-grpc]]``; it prints ``port N``
once it listens on 127.0.0.1. ``POST /v1/sources/<anything>`` stores the body in SQLite (WAL,
``synchronous=FULL``, the writes of concurrent requests grouped into one transaction by a writer
thread, as fnbox's bus does) and answers 202 once committed. Consumers read the stored rows back
in order, at most 16 in flight (fnbox's default delivery concurrency), and delete each row in
the same write that stores what it became:

- without ``--functions``, each body is POSTed to ``SINK_URL`` over 16 keep-alive connections:
  the least a Python service must do to relay webhooks durably;
- with ``--functions``, each body goes to the e2e scenario's source function (one invocation on
  a warm Node worker of fnbox's ``WorkerPool``, in this process), its event is stored, and a
  second consumer gives each event to the destination function, whose ``fetch`` POSTs it to
  the sink: fnbox's path (two functions, a durable hop between them) without the gRPC control
  service between the pipeline and the workers, leases, retries, dedup, routing or telemetry;
- with ``--functions --over-grpc``, the same, but the pool runs in a child process behind a
  bare gRPC stream of raw bytes (``bench.pool_floor``): the shape of fnbox's pipeline → control
  hop, without fnbox's layers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import queue
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from fnbox.executor import ExecutorSettings, WorkerPool

from bench.pool_floor import DESTINATION, SOURCE, E2EFunctions, PoolClient
from bench.sink import next_message

_Job = tuple[Callable[[sqlite3.Connection], Any], bool, "asyncio.Future[Any]"]
_IN_FLIGHT = 16
_READ_BATCH = 256
_FUNCTIONS_HELP = "run the e2e scenario's source and destination functions on Node workers"
_OVER_GRPC_HELP = "with --functions: run them in a child process over a bare gRPC stream"


class Store:
    """SQLite on a writer thread: every job queued while a group runs joins the next group,
    whose writes commit in one transaction."""

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        # AUTOINCREMENT: ids never come back after a delete, so "after the last one read" holds.
        self._conn.execute(
            "CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, stage INTEGER NOT NULL,"
            " body BLOB NOT NULL)"
        )
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
        head, self._buffer = message
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
    conn.execute("INSERT INTO q (stage, body) VALUES (0, ?)", (body,))


def _read(conn: sqlite3.Connection, stage: int, after: int) -> list[tuple[int, bytes]]:
    query = "SELECT id, body FROM q WHERE stage = ? AND id > ? ORDER BY id LIMIT ?"
    return conn.execute(query, (stage, after, _READ_BATCH)).fetchall()


def _advance(conn: sqlite3.Connection, stage: int, done: list[tuple[int, list[bytes]]]) -> None:
    """Store what the rows ``done`` became as rows of ``stage`` and delete them, in one write."""
    outputs = [(stage, body) for _, bodies in done for body in bodies]
    if outputs:
        conn.executemany("INSERT INTO q (stage, body) VALUES (?, ?)", outputs)
    conn.executemany("DELETE FROM q WHERE id = ?", [(row_id,) for row_id, _ in done])


Step = Callable[[bytes], Awaitable[list[bytes]]]


async def consume(
    store: Store, stage: int, step: Step, stored: asyncio.Event, next_stored: asyncio.Event
) -> None:
    """Run ``step`` on the rows of ``stage`` in order, at most 16 at a time; what a row becomes
    is stored as rows of the next stage, and the row deleted, in one write per group."""
    last = 0
    pending: set[asyncio.Task[None]] = set()
    done: list[tuple[int, list[bytes]]] = []

    async def one(row_id: int, body: bytes) -> None:
        try:
            outputs = await step(body)
        except Exception as exc:  # the row stays: the sink misses it and the bench says so
            sys.stderr.write(f"relay floor: stage {stage}: {exc!r}\n")
            return
        # Not `done.append(await ...)`: that would take the list before the await, and a flush
        # meanwhile would leave this row in a list already sent.
        done.append((row_id, outputs))

    def flush() -> None:
        nonlocal done
        if done:
            group, done = done, []
            advanced = store.run(
                functools.partial(_advance, stage=stage + 1, done=group), write=True
            )
            if any(outputs for _, outputs in group):
                advanced.add_done_callback(lambda _: next_stored.set())

    while True:
        flush()
        stored.clear()
        rows = await store.run(functools.partial(_read, stage=stage, after=last), write=False)
        if not rows:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stored.wait()
            continue
        last = rows[-1][0]
        for row_id, body in rows:
            task = asyncio.create_task(one(row_id, body))
            pending.add(task)
            task.add_done_callback(pending.discard)
            while len(pending) >= _IN_FLIGHT:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                flush()


async def sink_poster(sink_url: str) -> Step:
    """A step that POSTs its row to the sink over 16 keep-alive connections."""
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

    async def post(body: bytes) -> list[bytes]:
        conn = await idle.get()
        try:
            await conn.post(head, body)  # every answer counts: the sink always says 200
        finally:
            idle.put_nowait(conn)
        return []

    return post


Invoke = Callable[[int, bytes], Awaitable[list[bytes]]]


def function_steps(invoke: Invoke) -> tuple[Step, Step]:
    """The source function's step (a webhook → its events) and the destination's (an event →
    its fetch to the sink), each one ``invoke`` (``E2EFunctions.run`` in this process, or
    ``PoolClient.invoke`` over the gRPC stream)."""

    async def run_source(body: bytes) -> list[bytes]:
        return await invoke(SOURCE, body)

    async def run_destination(event: bytes) -> list[bytes]:
        await invoke(DESTINATION, event)
        return []

    return run_source, run_destination


async def pool_over_grpc(sink_url: str) -> tuple[Invoke, Callable[[], Awaitable[None]]]:
    """Invocations through a bare gRPC stream to a child process that runs the pool
    (``bench.pool_floor``), and how to stop it."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.pool_floor", sink_url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    line = (await child.stdout.readline()).decode()
    if not line.startswith("port "):
        raise RuntimeError(f"relay floor: the pool server did not start ({line!r})")
    client = PoolClient(f"127.0.0.1:{line.split()[1]}")
    await client.start()

    async def stop() -> None:
        await client.close()
        child.terminate()
        await child.wait()

    return client.invoke, stop


async def serve(sink_url: str, functions: bool, over_grpc: bool) -> None:
    loop = asyncio.get_running_loop()
    pool = None
    stop_pool_server = None
    with tempfile.TemporaryDirectory(prefix="fnbox-relay-floor-") as tmp:
        store = Store(Path(tmp) / "relay.db", loop)
        stages = [asyncio.Event(), asyncio.Event(), asyncio.Event()]
        if functions and over_grpc:
            invoke, stop_pool_server = await pool_over_grpc(sink_url)
            steps = list(function_steps(invoke))
        elif functions:
            pool = WorkerPool(ExecutorSettings(warm_workers=2, egress_allow=["127.0.0.1/32"]))
            await pool.start()
            steps = list(function_steps(E2EFunctions(pool, sink_url).run))
        else:
            steps = [await sink_poster(sink_url)]

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if request.method != "POST" or not request.path.startswith("/v1/sources/"):
                return web.Response(status=404)
            body = await request.read()
            await store.run(functools.partial(_insert, body=body), write=True)
            stages[0].set()
            return web.Response(status=202, body=b'{"ok":true}', content_type="application/json")

        runner = web.ServerRunner(web.Server(handle, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        consumers = [
            asyncio.create_task(consume(store, stage, step, stages[stage], stages[stage + 1]))
            for stage, step in enumerate(steps)
        ]
        sys.stdout.write(f"port {runner.addresses[0][1]}\n")
        sys.stdout.flush()
        try:
            await asyncio.gather(*consumers)
        finally:
            await runner.cleanup()
            if pool is not None:
                await pool.close()
            if stop_pool_server is not None:
                await stop_pool_server()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("sink_url")
        parser.add_argument("--functions", action="store_true", help=_FUNCTIONS_HELP)
        parser.add_argument("--over-grpc", action="store_true", help=_OVER_GRPC_HELP)
        args = parser.parse_args()
        asyncio.run(serve(args.sink_url, args.functions, args.over_grpc))


if __name__ == "__main__":
    main()
