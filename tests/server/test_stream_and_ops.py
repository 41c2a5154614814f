"""InvokeStream and InvokeStreamBatch (out of order, per-request statuses, bounded
concurrency, answers coalesced), spans, health, reflection."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from aiohttp import web
from fnbox.functions.v1 import invocation_pb2 as ipb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import RunningServer, ServerFactory
from tests.server.helpers import Api

Batch = ipb.InvokeStreamBatchRequest

# "slow" events wait for the test's HTTP server, which answers only when told to.
GATED = """
async function onTrack(event, settings) {
  if (event.event === 'slow') {
    const response = await fetch(settings.gate + '/' + event.messageId);
    console.log(await response.text());
  } else {
    console.log('fast ' + event.messageId);
  }
}
"""


@dataclass
class Gate:
    url: str
    arrived: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_arrivals(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.arrived) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def gate() -> AsyncIterator[Gate]:
    state = Gate("")

    async def handle(request: web.Request) -> web.Response:
        state.arrived.append(request.match_info["id"])
        state.changed.set()
        await state.opened.wait()
        return web.Response(text="slow " + request.match_info["id"])

    app = web.Application()
    app.router.add_get("/{id}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.opened.set()
        await runner.cleanup()


def _request(gate: Gate, target: str, kind: str, request_id: str) -> ipb.InvokeFunctionRequest:
    event = f'{{"type":"track","event":"{kind}","messageId":"{request_id}"}}'.encode()
    settings = f'{{"gate":"{gate.url}"}}'.encode()
    return ipb.InvokeFunctionRequest(
        target=target, event=event, settings=settings, request_id=request_id
    )


async def test_stream_answers_out_of_order_with_per_request_statuses(
    running_server: RunningServer, gate: Gate
) -> None:
    api = Api.of(running_server)
    fn = await api.create_function(code=GATED)
    call = api.functions.InvokeStream(metadata=api.metadata)
    await call.write(_request(gate, fn.id, "slow", "r1"))
    await gate.wait_arrivals(1)
    await call.write(_request(gate, fn.id, "fast", "r2"))
    await call.write(_request(gate, "fn_missing", "fast", "r3"))
    await call.write(ipb.InvokeFunctionRequest(target=fn.id, request_id="r4"))
    await call.done_writing()
    early = {}
    async with asyncio.timeout(10):  # a stream answering in order would block here
        for _ in range(3):
            response = await call.read()
            early[response.request_id] = response
    # r1 is still waiting on the gate: everything after it was answered first.
    assert set(early) == {"r2", "r3", "r4"}
    assert early["r2"].result.logs == ["fast r2"]
    assert early["r3"].WhichOneof("response") == "status"
    assert early["r3"].status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert early["r4"].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    gate.opened.set()
    last = await call.read()
    assert last.request_id == "r1" and last.result.logs == ["slow r1"]
    assert await call.read() == grpc.aio.EOF  # type: ignore[attr-defined]  # not in grpc-stubs
    assert await call.code() == grpc.StatusCode.OK


async def test_stream_concurrency_is_bounded(server_factory: ServerFactory, gate: Gate) -> None:
    server = await server_factory(grpc={"stream_concurrency": 2})
    api = Api.of(server)
    fn = await api.create_function(code=GATED)
    call = api.functions.InvokeStream(metadata=api.metadata)
    for i in range(3):
        await call.write(_request(gate, fn.id, "slow", f"s{i}"))
    await gate.wait_arrivals(2)
    # The third waits for a slot: it does not reach the gate while two are held.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await gate.wait_arrivals(3)
    assert len(gate.arrived) == 2
    gate.opened.set()
    await call.done_writing()
    answered = {(await call.read()).request_id for _ in range(3)}
    assert answered == {"s0", "s1", "s2"} and len(gate.arrived) == 3


async def test_streamed_calls_are_not_held_for_the_batch_window(
    server_factory: ServerFactory, gate: Gate
) -> None:
    # A unary call for a busy worker waits for the window (it reaches the worker with the
    # unary calls that follow); a streamed one does not: its caller sends calls together
    # already, and waiting would only slow it down.
    server = await server_factory(executor={"batch_window_ms": 50})
    api = Api.of(server)
    fn = await api.create_function(code=GATED)
    call = api.functions.InvokeStream(metadata=api.metadata)
    await call.write(_request(gate, fn.id, "slow", "r1"))
    await gate.wait_arrivals(1)  # its worker has a call in flight from now on
    started = time.perf_counter()
    await call.write(_request(gate, fn.id, "fast", "r2"))
    answer = await call.read()
    streamed = time.perf_counter() - started
    assert answer.request_id == "r2" and answer.result.logs == ["fast r2"]
    started = time.perf_counter()
    unary = await api.functions.InvokeFunction(
        _request(gate, fn.id, "fast", "r3"), metadata=api.metadata
    )
    held = time.perf_counter() - started
    assert unary.logs == ["fast r3"]
    assert held >= 0.045 > streamed, (held, streamed)
    gate.opened.set()
    await call.done_writing()
    assert (await call.read()).request_id == "r1"


async def test_batch_stream_answers_each_request_once_coalescing_answers(
    running_server: RunningServer,
) -> None:
    api = Api.of(running_server)
    fn = await api.create_function()
    ids = [f"b{i}" for i in range(50)]
    event = b'{"type":"track","event":"e"}'
    batch = Batch(
        requests=[ipb.InvokeFunctionRequest(target=fn.id, event=event, request_id=i) for i in ids]
    )
    call = api.functions.InvokeStreamBatch(metadata=api.metadata)
    await call.write(batch)
    await call.done_writing()
    messages = [message async for message in call]
    answered = Counter(r.request_id for m in messages for r in m.responses)
    assert answered == Counter(ids)
    assert all(r.result.logs == ["track e"] for m in messages for r in m.responses)
    # Answers that finish together share a message: far fewer messages than answers.
    assert len(messages) < len(ids), [len(m.responses) for m in messages]
    assert await call.code() == grpc.StatusCode.OK


async def test_batch_stream_answers_out_of_order_with_per_request_statuses(
    running_server: RunningServer, gate: Gate
) -> None:
    api = Api.of(running_server)
    fn = await api.create_function(code=GATED)
    call = api.functions.InvokeStreamBatch(metadata=api.metadata)
    await call.write(
        Batch(
            requests=[
                _request(gate, fn.id, "slow", "r1"),
                _request(gate, fn.id, "fast", "r2"),
                _request(gate, "fn_missing", "fast", "r3"),
            ]
        )
    )
    early: dict[str, ipb.InvokeStreamResponse] = {}
    async with asyncio.timeout(10):  # r1 waits on the gate: the others must not wait for it
        while len(early) < 2:
            early.update((r.request_id, r) for r in (await call.read()).responses)
    assert set(early) == {"r2", "r3"}
    await gate.wait_arrivals(1)
    assert early["r2"].result.logs == ["fast r2"]
    assert early["r3"].WhichOneof("response") == "status"
    assert early["r3"].status.code == grpc.StatusCode.NOT_FOUND.value[0]
    gate.opened.set()
    await call.done_writing()
    (last,) = (await call.read()).responses
    assert last.request_id == "r1" and last.result.logs == ["slow r1"]
    assert await call.read() == grpc.aio.EOF  # type: ignore[attr-defined]  # not in grpc-stubs
    assert await call.code() == grpc.StatusCode.OK


async def test_batch_stream_concurrency_counts_requests_not_messages(
    server_factory: ServerFactory, gate: Gate
) -> None:
    server = await server_factory(grpc={"stream_concurrency": 2})
    api = Api.of(server)
    fn = await api.create_function(code=GATED)
    call = api.functions.InvokeStreamBatch(metadata=api.metadata)
    await call.write(Batch(requests=[_request(gate, fn.id, "slow", f"s{i}") for i in range(3)]))
    await call.write(Batch(requests=[_request(gate, fn.id, "slow", "s3")]))
    await gate.wait_arrivals(2)
    # The rest of the message waits for a slot: nothing more reaches the gate while two are held.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await gate.wait_arrivals(3)
    assert len(gate.arrived) == 2
    gate.opened.set()
    await call.done_writing()
    answered = Counter([r.request_id async for m in call for r in m.responses])
    assert answered == Counter(["s0", "s1", "s2", "s3"]) and len(gate.arrived) == 4


async def test_batch_stream_answers_stay_under_the_message_limit(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory(grpc={"max_message_bytes": 4096})
    api = Api.of(server)
    fn = await api.create_function(
        code="async function onTrack() { console.log('x'.repeat(1000)) }"
    )
    call = api.functions.InvokeStreamBatch(metadata=api.metadata)
    ids = [f"big{i}" for i in range(20)]
    event = b'{"type":"track","event":"e"}'
    await call.write(
        Batch(
            requests=[
                ipb.InvokeFunctionRequest(target=fn.id, event=event, request_id=i) for i in ids
            ]
        )
    )
    await call.done_writing()
    # 20 answers of 1 kB finish about together; one message of them would exceed the limit.
    messages = [message async for message in call]
    assert Counter(r.request_id for m in messages for r in m.responses) == Counter(ids)
    assert all(m.ByteSize() <= 4096 for m in messages)
    assert await call.code() == grpc.StatusCode.OK


async def test_invocation_span_carries_function_version_and_outcome(
    server_factory: ServerFactory,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = await server_factory(tracer_provider=provider)
    api = Api.of(server)
    fn = await api.create_function(code="async function onTrack() { throw new Error('x') }")
    await api.functions.InvokeFunction(
        ipb.InvokeFunctionRequest(target=fn.id, event=b'{"type":"track"}'),
        metadata=api.metadata,
    )
    spans = [s for s in exporter.get_finished_spans() if s.name.endswith("/InvokeFunction")]
    assert len(spans) == 1
    attributes = dict(spans[0].attributes or {})
    assert attributes["fnbox.function"] == fn.id
    assert attributes["fnbox.version"] == f"{fn.name}/versions/1"
    assert attributes["fnbox.outcome"] == "ERROR"
    created = [s for s in exporter.get_finished_spans() if s.name.endswith("/CreateFunction")]
    assert len(created) == 1


async def test_health_and_reflection(running_server: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(running_server.channel)
    for service in ("", "fnbox.functions.v1.FunctionService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(running_server.channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name async for reply in call for s in reply.list_services_response.service}
    assert {
        "fnbox.functions.v1.FunctionService",
        "fnbox.functions.v1.InstanceService",
        "fnbox.functions.v1.WorkspaceService",
        "fnbox.functions.v1.DeadLetterService",
        "grpc.health.v1.Health",
    } <= names
    await running_server.service.begin_shutdown()
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
