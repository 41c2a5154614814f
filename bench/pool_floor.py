"""The e2e functions behind a bare gRPC stream: the shape of fnbox's pipeline → control hop.

``python -m bench.pool_floor SINK_URL`` serves ``/floor.Pool/Invoke`` on 127.0.0.1 (it prints
``port N``): a bidirectional stream of raw bytes whose messages carry any number of invocations
of the e2e scenario's source or destination function (bench/payloads.py), run on warm workers of
fnbox's ``WorkerPool`` in this process. Invocations run concurrently; the answers finished
together share a message, and the client (:class:`PoolClient`) sends the invocations asked for
in one turn of its loop as one message, as fnbox's pipeline client and control service do.
Nothing else: no protobuf, auth, registry, settings decryption, observer or tracing.

Messages are runs of items. An invocation: id (u32), kind (u8: 0 source, 1 destination),
length (u32), payload (the webhook body, or the event). An answer: id (u32), ok (u8), event
count (u16), then each event as length (u32) and bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
from fnbox.executor import (
    ExecutorSettings,
    FunctionSpec,
    FunctionType,
    Invocation,
    Outcome,
    WebhookInput,
    WorkerPool,
)

from bench.payloads import E2E_DESTINATION, E2E_SOURCE

SOURCE, DESTINATION = 0, 1
_METHOD = "/floor.Pool/Invoke"
_ASK = struct.Struct(">IBI")
_ANSWER = struct.Struct(">IBH")
_LENGTH = struct.Struct(">I")
_WEBHOOK_URL = "http://127.0.0.1/v1/sources/floor"  # what the source function sees


def _asks(message: bytes) -> list[tuple[int, int, bytes]]:
    asks, pos = [], 0
    while pos < len(message):
        ask_id, kind, length = _ASK.unpack_from(message, pos)
        pos += _ASK.size
        asks.append((ask_id, kind, message[pos : pos + length]))
        pos += length
    return asks


def _answers(message: bytes) -> list[tuple[int, bool, list[bytes]]]:
    answers, pos = [], 0
    while pos < len(message):
        ask_id, ok, count = _ANSWER.unpack_from(message, pos)
        pos += _ANSWER.size
        events = []
        for _ in range(count):
            (length,) = _LENGTH.unpack_from(message, pos)
            pos += _LENGTH.size
            events.append(message[pos : pos + length])
            pos += length
        answers.append((ask_id, bool(ok), events))
    return answers


def _encode_answer(ask_id: int, ok: bool, events: list[bytes]) -> bytes:
    parts = [_ANSWER.pack(ask_id, ok, len(events))]
    for event in events:
        parts += [_LENGTH.pack(len(event)), event]
    return b"".join(parts)


class E2EFunctions:
    """The e2e scenario's two functions on warm workers of ``pool``: :meth:`run` is what both
    function floors call, this module's server and ``bench.relay_floor`` in its own process."""

    def __init__(self, pool: WorkerPool, sink_url: str) -> None:
        self._pool = pool
        self._source = FunctionSpec(key="floor-source", type=FunctionType.SOURCE, code=E2E_SOURCE)
        self._destination = FunctionSpec(
            key="floor-destination", type=FunctionType.DESTINATION, code=E2E_DESTINATION
        )
        self._settings = orjson.dumps({"url": sink_url})

    async def run(self, kind: int, payload: bytes) -> list[bytes]:
        """The events the function emitted (the source's; none for the destination, whose
        ``fetch`` POSTs its event to the sink); raises when the invocation failed."""
        if kind == SOURCE:
            webhook = WebhookInput(
                method="POST",
                url=_WEBHOOK_URL,
                headers={"content-type": "application/json"},
                body=payload,
            )
            result = await self._pool.invoke(
                self._source, Invocation(kind="request", request=webhook)
            )
        else:
            invocation = Invocation(kind="event", payload=payload, settings=self._settings)
            result = await self._pool.invoke(self._destination, invocation)
        if result.outcome != Outcome.OK:
            raise RuntimeError(f"a function failed: {result.outcome} {result.error}")
        return result.events


class PoolServer:
    """The stream's server side: each invocation on the pool, the answers in completion order."""

    def __init__(self, functions: E2EFunctions) -> None:
        self._functions = functions

    async def invoke(self, requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        done: asyncio.Queue[bytes | None] = asyncio.Queue()
        running: set[asyncio.Task[None]] = set()

        async def one(ask_id: int, kind: int, payload: bytes) -> None:
            try:
                ok, events = True, await self._functions.run(kind, payload)
            except Exception as exc:
                sys.stderr.write(f"pool floor: {exc!r}\n")
                ok, events = False, []
            done.put_nowait(_encode_answer(ask_id, ok, events))

        async def read() -> None:
            try:
                async for message in requests:
                    for ask in _asks(message):
                        task = asyncio.create_task(one(*ask))
                        running.add(task)
                        task.add_done_callback(running.discard)
                while running:
                    await asyncio.wait(set(running))
            finally:
                done.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (answer := await done.get()) is not None:
                group = [answer]
                while not done.empty() and (more := done.get_nowait()) is not None:
                    group.append(more)
                yield b"".join(group)
        finally:
            reader.cancel()


class PoolClient:
    """The stream's client side: invocations asked for in one loop turn go out as one message."""

    def __init__(self, target: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._call: Any = None
        self._next_id = 0
        self._asked: list[bytes] = []
        self._waiting: dict[int, asyncio.Future[tuple[bool, list[bytes]]]] = {}
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._call = self._channel.stream_stream(_METHOD, None, None)(None)  # bytes as they are
        self._tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._read())]

    async def invoke(self, kind: int, payload: bytes) -> list[bytes]:
        loop = asyncio.get_running_loop()
        self._next_id += 1
        future: asyncio.Future[tuple[bool, list[bytes]]] = loop.create_future()
        self._waiting[self._next_id] = future
        self._asked.append(_ASK.pack(self._next_id, kind, len(payload)) + payload)
        if len(self._asked) == 1:
            loop.call_soon(self._flush)
        ok, events = await future
        if not ok:
            raise RuntimeError("pool floor: a function failed")
        return events

    def _flush(self) -> None:
        asked, self._asked = self._asked, []
        self._outbox.put_nowait(b"".join(asked))

    async def _write(self) -> None:
        while True:
            message = [await self._outbox.get()]
            while not self._outbox.empty():
                message.append(self._outbox.get_nowait())
            await self._call.write(b"".join(message))

    async def _read(self) -> None:
        async for message in self._call:
            for ask_id, ok, events in _answers(message):
                future = self._waiting.pop(ask_id)
                if not future.done():
                    future.set_result((ok, events))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._channel.close(None)


async def serve(sink_url: str) -> None:
    pool = WorkerPool(ExecutorSettings(warm_workers=2, egress_allow=["127.0.0.1/32"]))
    await pool.start()
    server = grpc.aio.server()
    floor = PoolServer(E2EFunctions(pool, sink_url))
    handler = grpc.method_handlers_generic_handler(
        "floor.Pool", {"Invoke": grpc.stream_stream_rpc_method_handler(floor.invoke)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    sys.stdout.write(f"port {port}\n")
    sys.stdout.flush()
    try:
        await server.wait_for_termination()
    finally:
        await pool.close()


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sys.argv[1]))


if __name__ == "__main__":
    main()
