"""Function logs: recent errors with redacted secrets, sampling, caps, the live tail."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from fnbox.client import FnboxClient, Unavailable
from fnbox.client.errors import error_from_status
from fnbox.client.observability import ObservabilityAPI
from fnbox.functions.v1 import invocation_pb2, observability_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import RunningServer, ServerFactory
from tests.e2e.sink import Sink
from tests.observability.helpers import (
    FAILING,
    KEY_SETTING,
    LEAKY,
    SECRET,
    URL_SETTING,
    Cli,
    deployed,
    eventually,
    read_until,
    track,
)

FAST = {"logs_flush_s": 0.05, "logs_tail_poll_s": 0.1}


def _client(server: RunningServer) -> FnboxClient:
    return FnboxClient(server.address, server.admin_token)


async def _stored(
    api: ObservabilityAPI, function: str, count: int, *, errors_only: bool = False
) -> list[observability_pb2.LogEntry]:
    found: list[observability_pb2.LogEntry] = []

    async def enough() -> bool:
        found[:] = (await api.list_logs(function, errors_only=errors_only)).entries
        return len(found) >= count

    await eventually(enough, within=10, what=f"{count} stored log entries")
    return found


async def test_errors_are_kept_with_secrets_redacted(
    server_factory: ServerFactory, spans: InMemorySpanExporter
) -> None:
    server = await server_factory(telemetry=FAST)
    async with _client(server) as client, Sink() as sink:
        fn = await deployed(client, "leaky", LEAKY, [KEY_SETTING, URL_SETTING])
        instance = await client.instances.create(
            fn.name, "leaky", settings=orjson.dumps({"apiKey": SECRET, "url": sink.url("x")})
        )
        result = await client.invoke(
            instance.id, event=track(1, fail=True, echo=SECRET), request_id="req-1"
        )
        assert SECRET in result.error.message  # the caller of an invocation sees it all
        api = ObservabilityAPI(client.transport)
        [entry] = await _stored(api, fn.name, 1)

    assert SECRET not in entry.SerializeToString().decode("utf-8", "replace")
    assert entry.error.name == "Error"
    assert entry.error.message == "rejected key [REDACTED]"
    assert "[REDACTED]" in entry.error.stack or SECRET not in entry.error.stack
    assert entry.logs == ["calling with [REDACTED]"]
    assert entry.requests[0].url.endswith("/x?key=[REDACTED]")
    assert entry.requests[0].status == 200
    assert json.loads(entry.input)["properties"]["echo"] == "[REDACTED]"
    assert entry.outcome == invocation_pb2.OUTCOME_ERROR
    assert entry.kind == observability_pb2.LOG_ENTRY_KIND_ERROR
    assert entry.instance == instance.name
    assert entry.version == f"{fn.name}/versions/1"
    assert entry.function == fn.name and entry.name.startswith(f"{fn.name}/logs/lg_")
    assert entry.request_id == "req-1"
    invoked = [s for s in spans.get_finished_spans() if s.name == "executor.invoke"]
    assert [format(s.context.trace_id, "032x") for s in invoked if s.context] == [entry.trace_id]
    assert entry.duration_ms > 0 and entry.time.seconds > 0


# Grows its heap until V8 gives up: the worker dies under the call, which has no result.
HOG = """
async function onTrack(e) { const a = []; for (;;) a.push(new Array(1e6).fill(e.properties.n)) }
"""


async def test_an_invocation_whose_worker_dies_is_kept_as_an_error_with_its_fault(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory(telemetry=FAST)
    async with _client(server) as client:
        fn = await deployed(client, "hog", HOG)
        with pytest.raises(Unavailable) as caught:
            await client.invoke(fn.id, event=track(7), request_id="req-hog")
        assert caught.value.reason == "WORKER_CRASHED"
        api = ObservabilityAPI(client.transport)
        [entry] = await _stored(api, fn.name, 1, errors_only=True)
        usage = await api.usage(function=fn.id)
        code, out, err = await Cli(server.address, server.admin_token).run("logs", fn.id)

    # What the caller was told, kept where the function's errors are looked for.
    fault = error_from_status(entry.fault)
    assert (fault.reason, fault.metadata["cause"]) == ("WORKER_CRASHED", "heap_limit")
    assert fault.message == caught.value.message
    assert fault.message.startswith("the function ran out of memory")
    assert entry.outcome == invocation_pb2.OUTCOME_UNSPECIFIED
    assert entry.kind == observability_pb2.LOG_ENTRY_KIND_ERROR
    assert json.loads(entry.input)["properties"]["n"] == 7
    assert entry.request_id == "req-hog" and entry.duration_ms > 0
    assert entry.version == f"{fn.name}/versions/1"
    # Counted as an invocation that failed, for the time it held the worker.
    [record] = usage.records
    assert (record.invocations, record.errors) == (1, 1) and record.execution_ms > 0
    assert code == 0, err
    lines = out.splitlines()
    assert "WORKER_CRASHED" in lines[0] and lines[1] == f"  {fault.message}"


async def test_function_targets_redact_the_values_their_schema_marks_sensitive(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory(telemetry=FAST)
    async with _client(server) as client, Sink() as sink:
        fn = await deployed(client, "leaky", LEAKY, [KEY_SETTING, URL_SETTING])
        settings = {"apiKey": SECRET, "url": sink.url("x")}
        await client.invoke(fn.id, event=track(1, fail=True), settings=orjson.dumps(settings))
        [entry] = await _stored(ObservabilityAPI(client.transport), fn.name, 1)
    assert SECRET not in entry.SerializeToString().decode("utf-8", "replace")
    assert entry.error.message == "rejected key [REDACTED]" and entry.instance == ""


async def test_only_the_most_recent_errors_are_kept_and_successes_only_when_sampled(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory(telemetry=FAST | {"logs_max_errors": 3})
    async with _client(server) as client:
        fn = await deployed(client, "failing", FAILING)
        api = ObservabilityAPI(client.transport)
        for n in range(5):
            await client.invoke(fn.id, event=track(n, fail=True))
        await client.invoke(fn.id, event=track(99))  # a success: not kept (rate 0)
        await _stored(api, fn.name, 3)
        for n in range(5, 7):  # in a later write: older rows are pruned from the table
            await client.invoke(fn.id, event=track(n, fail=True))

        async def newest_kept() -> bool:
            entries = (await api.list_logs(fn.name)).entries
            return [e.error.message for e in entries] == [f"failed n={n}" for n in (6, 5, 4)]

        await eventually(newest_kept, within=10, what="the three newest errors")

    sampled = await server_factory(telemetry=FAST | {"logs_sample_rate": 1.0})
    async with _client(sampled) as client:
        fn = await deployed(client, "sampled", FAILING)
        api = ObservabilityAPI(client.transport)
        await client.invoke(fn.id, event=track(1))
        [entry] = await _stored(api, fn.name, 1)
        assert entry.kind == observability_pb2.LOG_ENTRY_KIND_SAMPLE
        assert entry.outcome == invocation_pb2.OUTCOME_OK and entry.logs == ["n=1"]
        assert (await api.list_logs(fn.name, errors_only=True)).entries == []


async def test_fnbox_logs_follow_shows_a_new_error_live(server_factory: ServerFactory) -> None:
    server = await server_factory(telemetry=FAST)
    assert server.service.observability is not None
    logs = server.service.observability.logs
    cli = Cli(server.address, server.admin_token)
    async with _client(server) as client:
        fn = await deployed(client, "watched", FAILING)
        await client.invoke(fn.id, event=track(1, fail=True))
        await _stored(ObservabilityAPI(client.transport), fn.name, 1)

        code, out, err = await cli.run("logs", fn.id)
        assert code == 0, err
        assert "TypeError: failed n=1" in out and "log: n=1" in out

        follow = await cli.start("logs", fn.id, "--follow")
        try:
            before = await read_until(follow, "failed n=1")  # the stored entry first
            assert "ERROR" in before[0]
            await eventually(lambda: logs.watching(fn.id) == 1, within=20, what="the tail")
            await client.invoke(fn.id, event=track(2, fail=True))
            live = await read_until(follow, "failed n=2")
            assert any("ERROR" in line for line in live)
            await client.invoke(fn.id, event=track(3))  # successes stream live too
            await read_until(follow, "log: n=3")
        finally:
            follow.terminate()
            await follow.wait()
        await eventually(lambda: logs.watching(fn.id) == 0, within=10, what="the tail to close")

        code, out, _ = await cli.run("--output", "json", "logs", fn.id, "--errors")
        entries = [json.loads(line) for line in out.splitlines()]
        assert [e["error"]["message"] for e in entries] == ["failed n=1", "failed n=2"]
        assert entries[0]["input"]["properties"]["n"] == 1  # JSON input shown as JSON


async def test_tails_end_when_the_server_stops(server_factory: ServerFactory) -> None:
    server = await server_factory(telemetry=FAST)
    async with _client(server) as client:
        fn = await deployed(client, "tailed", FAILING)
        api = ObservabilityAPI(client.transport)
        opened = asyncio.Event()
        received: list[observability_pb2.LogEntry] = []

        async def follow() -> None:
            async for entry in api.tail(fn.id, opened=opened):
                received.append(entry)

        task = asyncio.create_task(follow())
        await asyncio.wait_for(opened.wait(), 10)
        await client.invoke(fn.id, event=track(7, fail=True))
        await eventually(lambda: len(received) == 1, within=10, what="the live entry")
        assert received[0].kind == observability_pb2.LOG_ENTRY_KIND_ERROR
        async with asyncio.timeout(5):  # well within the server's 10 s shutdown grace
            await server.service.stop()
            await task
