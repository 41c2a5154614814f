"""The happy path through the real worker.js and the real runtime (js/runtime/sandbox.js)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from fnbox.executor import (
    ExecutorSettings,
    FunctionType,
    Invocation,
    Outcome,
    WebhookInput,
)
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.executor.conftest import PoolFactory, invoke, spec, track
from tests.support.http import header_recorder


def real_settings(**overrides: object) -> ExecutorSettings:
    base: dict[str, object] = {"warm_workers": 1, "egress_allow": ["127.0.0.1/32"]}
    return ExecutorSettings.model_validate(base | overrides)


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    async with header_recorder() as sink:
        yield sink


async def test_destination_insert_and_source(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(real_settings())
    dest = spec("async function onTrack(event, settings) { console.log('got', event.event) }")
    result = await invoke(pool, dest)
    assert result.outcome is Outcome.OK and result.logs == ["got Test"]

    insert = spec(
        "async function onTrack(event) { event.properties = {seen: true}; return event }",
        key="insert/1",
        type=FunctionType.INSERT_DESTINATION,
    )
    result = await invoke(pool, insert)
    assert result.outcome is Outcome.OK and result.returned is not None
    assert orjson.loads(result.returned)["properties"] == {"seen": True}

    source = spec(
        "async function onRequest(request, settings) {"
        " const body = request.json();"
        " Segment.track({event: body.name, userId: settings.user}) }",
        key="source/1",
        type=FunctionType.SOURCE,
    )
    req = WebhookInput(
        method="POST",
        url="https://in/x",
        headers={"content-type": "application/json"},
        body=b'{"name": "Signed Up"}',
    )
    result = await pool.invoke(
        source, Invocation(kind="request", request=req, settings=b'{"user": "u7"}')
    )
    assert result.outcome is Outcome.OK
    (event,) = result.events
    assert orjson.loads(event) | {"event": "Signed Up", "userId": "u7"} == orjson.loads(event)
    assert len({pool.stats().by_key[k] for k in ("fn/1", "insert/1", "source/1")}) == 1


async def test_user_errors_keep_their_outcome(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(real_settings())
    cases = {
        "throw new ValidationError('no email')": Outcome.VALIDATION_ERROR,
        "throw new RetryError('later')": Outcome.RETRY,
        "throw new EventNotSupported('nope')": Outcome.EVENT_NOT_SUPPORTED,
        "throw new Error('plain')": Outcome.ERROR,
    }
    for i, (body, outcome) in enumerate(cases.items()):
        result = await invoke(pool, spec(f"async function onTrack(e) {{ {body} }}", key=f"e/{i}"))
        assert result.outcome is outcome, body
        assert result.error is not None and result.error.message in body


async def test_top_level_throw_is_a_result(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(real_settings())
    result = await invoke(pool, spec("throw new Error('at load')"))
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and result.error.message == "at load"


async def test_check_syntax_reports_line_and_column(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(real_settings(warm_workers=0))
    problem = await pool.check_syntax("async function onTrack(e) {\n  return e.\n}\n")
    assert problem is not None and problem.line == 3 and problem.column >= 1
    assert await pool.check_syntax("async function onTrack(e) { return e }") is None


async def test_batch(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(real_settings())
    fn = spec("async function onBatch(events) { return events.map(() => ({status: 200})) }")
    events = orjson.dumps([{"type": "track", "event": str(i)} for i in range(3)])
    result = await pool.invoke(fn, Invocation(kind="batch", payload=events))
    assert result.outcome is Outcome.OK
    assert [b.status for b in result.batch] == [200, 200, 200]


async def test_span_and_traceparent_reach_the_functions_fetch(
    pool_factory: PoolFactory,
    spans: InMemorySpanExporter,
    echo_server: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = echo_server
    pool = await pool_factory(real_settings())
    fn = spec("async function onTrack(e, s) { await fetch(s.url) }", key="traced/1")
    settings = orjson.dumps({"url": url})
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        result = await pool.invoke(
            fn, Invocation(kind="event", payload=b'{"type":"track"}', settings=settings)
        )
    assert result.outcome is Outcome.OK, result.error
    (span,) = [
        s
        for s in spans.get_finished_spans()
        if s.attributes and s.attributes.get("fnbox.function.key") == "traced/1"
    ]
    assert span.name == "executor.invoke"
    assert span.parent is not None and span.parent.span_id == caller.get_span_context().span_id
    assert span.attributes is not None
    assert span.attributes["fnbox.worker.pid"] == result.worker_pid
    assert span.attributes["fnbox.outcome"] == "OK"
    (headers,) = seen
    _, trace_id, parent_id, _ = headers["traceparent"].split("-")
    assert int(trace_id, 16) == span.context.trace_id
    assert int(parent_id, 16) != 0


async def test_many_concurrent_calls(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(real_settings())
    fn = spec(
        "async function onTrack(e) { await new Promise(r => setTimeout(r, 50)); return e }",
        type=FunctionType.INSERT_DESTINATION,
    )
    results = await asyncio.gather(*(invoke(pool, fn, track(n=i)) for i in range(200)))
    assert [orjson.loads(r.returned or b"null")["n"] for r in results] == list(range(200))
