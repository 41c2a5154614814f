"""SEGMENT-SPEC behaviours owned by the pipeline (webhook gateway and delivery workers), observed
end to end on one `fnbox serve` (embedded backend) with the pipeline's e2e harness
(tests/e2e/system.py: short retry delays, 127.0.0.1 egress allowed; tests/e2e/sink.py).

SPEC → tests
- §2 / §8.9 only POST is accepted by a source webhook [doc] → test_webhook_get_is_rejected_with_405
- §2 / §8.9 max incoming body 512 KiB [doc] → test_webhook_body_of_512_kib_is_accepted,
  test_webhook_body_over_512_kib_is_rejected_with_413
- §2 Content-Type must be application/json or form-urlencoded [doc]
  → test_webhook_content_type_must_be_json_or_form
- §2 / §8.5 messages are sent only if onRequest resolves [legacy doc]
  → test_only_a_resolved_source_handler_sends_its_events
- §3 / §4 / §8.4 destination RetryError is retried until it succeeds [doc]
  → test_destination_retry_error_is_retried_until_delivered
- §3 / §4 / §8.4 destination Timeout is retried [doc] → test_destination_timeout_is_retried
- §3 / §8.1 / §8.2 / §8.3 Unsupported Event Type, Message Rejected, Bad Request are discarded,
  not retried [doc] → test_destination_final_outcomes_are_not_retried
- §4 / §8.4 source RetryError: at most 6 attempts, then dropped and logged [doc]
  → test_source_retry_error_is_attempted_six_times
- §4 retry and batching figures: source 6 attempts, first delay 1 to 3 min, delays ≤ 20 min;
  destination 4 h; batches of 20 / 10 s [doc] → test_retry_and_batching_defaults_match_segment
- §4 / §8.11 onBatch partial failure: only the failed entries are retried [doc]
  → test_on_batch_partial_failure_retries_only_failed_events
- §4 / §8.11 onBatch gets at most max_count events; a partial batch is flushed after the wait
  [doc] → test_on_batch_gets_at_most_max_count_events
- §1 / §8.10 destination insert: the destination receives the modified event [doc]
  → test_insert_function_modified_event_is_delivered
- §3 / §8.10 DropEvent: not delivered, not retried [doc]
  → test_insert_function_drop_is_neither_delivered_nor_retried
- §1 source insert runs at ingest on the source's events [doc]
  → test_source_insert_function_transforms_events_at_ingest
- §2 Segment.set objects go to warehouses only, never to event destinations [doc]
  → test_set_objects_never_reach_destinations
- §2 receivedAt (and a messageId) are set by the Tracking API, not the function [boreal]
  → test_ingest_sets_received_at_and_message_id
- §1 / §6 the integrations object is applied before destination and insert functions: a
  filtered event is not invoked; a destination function's key is "<Fn name> (<Workspace
  name>)", exact and case-sensitive; "All": false blocks every destination whose key is not
  true [doc] → test_integrations_object_filters_before_insert_and_destination
- §2 deployed sources get JSON keys alphabetized [doc]: deliberately not reproduced, the body
  reaches onRequest byte for byte (docs/segment-compat.md)
  → test_webhook_body_reaches_the_function_unchanged
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from fnbox.client import FnboxClient
from fnbox.client.dead_letters import DeadLettersAPI
from fnbox.delivery.settings import DeliverySettings
from fnbox.functions.v1 import dead_letters_pb2, invocation_pb2, resources_pb2
from fnbox.gateway.settings import GatewaySettings

from tests.conformance.harness import DESTINATION, INSERT_DESTINATION, INSERT_SOURCE, SOURCE
from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, metric
from tests.support import polling

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(180)]

pb = resources_pb2
JSON = {"content-type": "application/json"}
_names = itertools.count(1)


@pytest.fixture(scope="module")
def system(served: System) -> System:
    return served


async def eventually(
    system: System, check: Callable[[], Awaitable[bool] | bool], *, within: float, what: str
) -> None:
    """polling.eventually, with the tail of the service logs in the failure message."""
    await polling.eventually(
        check, within=within, what=lambda: f"{what}\n{system.logs()[-6000:]}", every=0.05
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sink() -> AsyncIterator[Sink]:
    async with Sink() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(system: System) -> AsyncIterator[FnboxClient]:
    async with FnboxClient(system.target, system.token) as connected:
        yield connected


async def deployed(
    client: FnboxClient, type: pb.FunctionType, code: str, **options: Any
) -> pb.Function:
    fn = await client.functions.create(f"conformance {next(_names)}", type, code, **options)
    return await client.functions.deploy(fn.name)


async def source(client: FnboxClient, code: str = pipeline.SOURCE, **options: Any) -> pb.Instance:
    fn = await deployed(client, SOURCE, code)
    return await client.instances.create(fn.name, "source", **options)


async def destination(
    client: FnboxClient,
    sink: Sink,
    route: str,
    sources: list[str],
    code: str = pipeline.DESTINATION,
    **options: Any,
) -> pb.Instance:
    insert = options.pop("insert_instance", "")
    fn = await deployed(
        client, DESTINATION, code, settings_schema=[pipeline.URL_SETTING], **options
    )
    instance = await client.instances.create(
        fn.name, route, settings={"url": sink.url(route)}, sources=sources, insert_instance=insert
    )
    await pipeline.connections_settled()
    return instance


async def post(system: System, src: pb.Instance, body: Any) -> str:
    async with aiohttp.ClientSession() as session:
        status, answer, _ = await pipeline.post(
            session, pipeline.webhook_url(system.http, src), body
        )
    assert status == 202, answer
    return str(answer["id"])


async def dead_letters(
    client: FnboxClient, instance: pb.Instance
) -> list[dead_letters_pb2.DeadLetter]:
    api = DeadLettersAPI(client.transport)
    return [d async for d in api.iterate(instance=instance.name)]


async def status_of(
    system: System, src: pb.Instance, method: str, data: bytes, headers: dict[str, str]
) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, pipeline.webhook_url(system.http, src), data=data, headers=headers
        ) as response,
    ):
        return response.status


async def test_webhook_get_is_rejected_with_405(system: System, client: FnboxClient) -> None:
    src = await source(client)
    assert await status_of(system, src, "GET", b"", {}) == 405


async def test_webhook_body_of_512_kib_is_accepted(system: System, client: FnboxClient) -> None:
    src = await source(client, "async function onRequest(request) {}")
    body = b'{"a":"' + b"x" * (512 * 1024 - 8) + b'"}'
    assert len(body) == 512 * 1024
    assert await status_of(system, src, "POST", body, JSON) == 202


async def test_webhook_body_over_512_kib_is_rejected_with_413(
    system: System, client: FnboxClient
) -> None:
    src = await source(client, "async function onRequest(request) {}")
    body = b'{"a":"' + b"x" * (512 * 1024 - 7) + b'"}'
    assert await status_of(system, src, "POST", body, JSON) == 413


async def test_webhook_content_type_must_be_json_or_form(
    system: System, client: FnboxClient
) -> None:
    src = await source(client, "async function onRequest(request) {}")
    assert await status_of(system, src, "POST", b"x", {"content-type": "text/plain"}) == 415
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert await status_of(system, src, "POST", b"a=1", form) == 202


async def test_only_a_resolved_source_handler_sends_its_events(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    code = """
    async function onRequest(request) {
      const body = request.json()
      Segment.track({ event: body.event, userId: 'u' })
      if (body.fail) throw new Error('failed after emitting')
    }"""
    src = await source(client, code)
    await destination(client, sink, "resolved", [src.name])
    await post(system, src, {"event": "Failed", "fail": True})
    await post(system, src, {"event": "Kept"})
    await eventually(
        system, lambda: len(sink.received("resolved")) >= 1, within=30, what="the kept event"
    )

    async def failed_recorded() -> bool:
        return len(await dead_letters(client, src)) == 1

    await eventually(system, failed_recorded, within=30, what="the failed webhook in the DLQ")
    assert {e["event"] for e in sink.received("resolved")} == {"Kept"}  # duplicates are legal
    (letter,) = await dead_letters(client, src)
    assert (letter.reason, letter.attempts) == ("FINAL_OUTCOME", 1)


async def test_destination_retry_error_is_retried_until_delivered(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await source(client)
    dest = await destination(client, sink, "retried", [src.name])
    sink.route("retried").failures = [503, 503]  # the function turns 5xx into RetryError
    await post(system, src, pipeline.track(1))
    await eventually(
        system, lambda: len(sink.received("retried")) == 1, within=60, what="the retried event"
    )
    assert sink.route("retried").attempts == 3
    assert await dead_letters(client, dest) == []


async def test_destination_timeout_is_retried(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await source(client)
    dest = await destination(
        client, sink, "slow", [src.name], limits=pb.FunctionLimits(timeout_ms=1500)
    )
    # The first attempt hangs on the endpoint until the 1.5 s limit kills it; the retry runs in
    # a new worker (its first fetch may take a few hundred ms on a busy machine).
    sink.route("slow").hang = True
    await post(system, src, pipeline.track(1))
    await eventually(
        system, lambda: sink.route("slow").attempts >= 1, within=30, what="the first attempt"
    )
    sink.route("slow").hang = False
    await eventually(
        system, lambda: len(sink.received("slow")) == 1, within=60, what="the event after a timeout"
    )
    assert sink.route("slow").attempts >= 2
    assert await dead_letters(client, dest) == []


async def test_destination_final_outcomes_are_not_retried(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    emits = """
    async function onRequest(request) {
      for (const e of request.json().events) e.type === 'identify' ? Segment.identify(e) : Segment.track(e)
    }"""
    code = """
    async function onTrack(event) {
      if (event.event === 'Invalid') throw new ValidationError('missing email')
      throw new TypeError('bad request')
    }"""
    src = await source(client, emits)
    dest = await destination(client, sink, "final", [src.name], code=code)
    sent = [
        {"event": "Invalid", "userId": "u"},
        {"event": "Broken", "userId": "u"},
        {"type": "identify", "userId": "u"},
    ]
    await post(system, src, {"events": sent})

    async def three() -> bool:
        return len(await dead_letters(client, dest)) == 3

    await eventually(system, three, within=60, what="3 dead letters")
    letters = await dead_letters(client, dest)
    seen = sorted(
        (d.error.name, invocation_pb2.Outcome.Name(d.outcome), d.reason, d.attempts)
        for d in letters
    )
    assert seen == [
        ("EventNotSupported", "OUTCOME_EVENT_NOT_SUPPORTED", "FINAL_OUTCOME", 1),
        ("TypeError", "OUTCOME_ERROR", "FINAL_OUTCOME", 1),
        ("ValidationError", "OUTCOME_VALIDATION_ERROR", "FINAL_OUTCOME", 1),
    ]


async def test_source_retry_error_is_attempted_six_times(
    system: System, client: FnboxClient
) -> None:
    src = await source(
        client, "async function onRequest(request) { throw new RetryError('upstream busy') }"
    )
    await post(system, src, {"a": 1})

    async def exhausted() -> bool:
        return len(await dead_letters(client, src)) == 1

    await eventually(system, exhausted, within=60, what="the exhausted webhook")
    (letter,) = await dead_letters(client, src)
    assert (letter.reason, letter.attempts, letter.error.name) == (
        "RETRIES_EXHAUSTED",
        6,
        "RetryError",
    )


async def test_retry_and_batching_defaults_match_segment() -> None:
    gateway = GatewaySettings()
    assert gateway.retry_attempts == 6
    assert (gateway.retry_first_min_seconds, gateway.retry_first_max_seconds) == (60, 180)
    assert gateway.retry_max_seconds == 20 * 60
    delivery = DeliverySettings()
    assert delivery.retry_max_age_seconds == 4 * 3600
    assert (delivery.batch_max_count, delivery.batch_max_wait_seconds) == (20, 10)


ON_BATCH_PER_EVENT = """
async function onBatch(events, settings) {
  const statuses = []
  for (const event of events) {
    const response = await fetch(settings.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) })
    statuses.push(response.ok ? { status: 200 } : { status: response.status, errormessage: 'endpoint answered ' + response.status })
  }
  return statuses
}"""


async def test_on_batch_partial_failure_retries_only_failed_events(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await source(client)
    batch = pb.BatchOptions(max_count=5, max_wait_ms=300)
    await destination(client, sink, "partial", [src.name], code=ON_BATCH_PER_EVENT, batch=batch)
    sink.route("partial").failures = [500]  # the first event posted fails once
    await post(system, src, {"events": [pipeline.track(i) for i in range(5)]})
    await eventually(
        system, lambda: len(sink.message_ids("partial")) == 5, within=60, what="5 events"
    )
    assert sink.route("partial").attempts == 6  # 5 + the one failed entry again
    assert max(sink.message_ids("partial").values()) == 1


async def test_on_batch_gets_at_most_max_count_events(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    code = """
    async function onBatch(events, settings) {
      await fetch(settings.url, { method: 'POST', headers: { 'content-type': 'application/json' },
                                  body: JSON.stringify({ size: events.length, ns: events.map((e) => e.properties.n) }) })
    }"""
    src = await source(client)
    batch = pb.BatchOptions(max_count=3, max_wait_ms=300)
    await destination(client, sink, "sizes", [src.name], code=code, batch=batch)
    await post(system, src, {"events": [pipeline.track(i) for i in range(7)]})

    def delivered() -> int:
        return sum(int(b["size"]) for b in sink.received("sizes"))  # type: ignore[call-overload]

    await eventually(system, lambda: delivered() == 7, within=60, what="7 events in batches")
    sizes = [b["size"] for b in sink.received("sizes")]
    assert all(1 <= s <= 3 for s in sizes), sizes  # type: ignore[operator]
    assert sorted(n for b in sink.received("sizes") for n in b["ns"]) == list(range(7))  # type: ignore[attr-defined]


INSERT = """
async function onTrack(event, settings) {
  if (event.properties && event.properties.test) {
    await fetch(settings.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ dropped: event.messageId }) })
    throw new DropEvent('test event')
  }
  event.properties = { ...event.properties, redacted: true }
  return event
}"""


async def _insert_instance(client: FnboxClient, sink: Sink, route: str) -> pb.Instance:
    fn = await deployed(client, INSERT_DESTINATION, INSERT, settings_schema=[pipeline.URL_SETTING])
    return await client.instances.create(fn.name, route, settings={"url": sink.url(route)})


async def test_insert_function_modified_event_is_delivered(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await source(client)
    insert = await _insert_instance(client, sink, "insert-drops-a")
    await destination(client, sink, "modified", [src.name], insert_instance=insert.name)
    await post(system, src, pipeline.track(1))
    await eventually(
        system, lambda: len(sink.received("modified")) >= 1, within=30, what="the modified event"
    )
    assert sink.received("modified")[0]["properties"] == {"n": 1, "redacted": True}


async def test_insert_function_drop_is_neither_delivered_nor_retried(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await source(client)
    insert = await _insert_instance(client, sink, "insert-drops-b")
    dest = await destination(client, sink, "after-drop", [src.name], insert_instance=insert.name)
    test_event = pipeline.track(1) | {"properties": {"test": True}}
    await post(system, src, {"events": [test_event, pipeline.track(2)]})
    await eventually(
        system, lambda: len(sink.received("after-drop")) >= 1, within=30, what="the kept event"
    )
    await eventually(
        system, lambda: len(sink.received("insert-drops-b")) == 1, within=30, what="the drop"
    )
    assert {e["userId"] for e in sink.received("after-drop")} == {"u2"}
    assert sink.route("insert-drops-b").attempts == 1
    assert await dead_letters(client, dest) == []


async def test_source_insert_function_transforms_events_at_ingest(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    code = "async function onTrack(event) { event.context = { ...event.context, ingest: 'checked' }; return event }"
    fn = await deployed(client, INSERT_SOURCE, code)
    insert = await client.instances.create(fn.name, "source insert")
    src = await source(client, insert_instance=insert.name)
    await destination(client, sink, "ingested", [src.name])
    await post(system, src, pipeline.track(1))
    await eventually(
        system, lambda: len(sink.received("ingested")) >= 1, within=30, what="the event"
    )
    assert sink.received("ingested")[0]["context"]["ingest"] == "checked"  # type: ignore[index]


async def test_set_objects_never_reach_destinations(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    code = """
    async function onRequest(request) {
      Segment.set({ collection: 'products', id: 'p1', properties: { price: 10 } })
      Segment.track({ event: 'Viewed', userId: 'u' })
    }"""
    src = await source(client, code)
    await destination(client, sink, "no-objects", [src.name])
    await post(system, src, {})
    await eventually(
        system, lambda: len(sink.received("no-objects")) >= 1, within=30, what="the track"
    )
    # Both came from one invocation and are published together: the track arriving means the
    # object would have been there too.
    assert {e.get("type") for e in sink.received("no-objects")} == {"track"}


async def test_ingest_sets_received_at_and_message_id(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await source(client)
    await destination(client, sink, "enriched", [src.name])
    await post(system, src, pipeline.track(1))
    await eventually(
        system, lambda: len(sink.received("enriched")) >= 1, within=30, what="the event"
    )
    event = sink.received("enriched")[0]
    assert event["receivedAt"] and event["messageId"]


async def test_webhook_body_reaches_the_function_unchanged(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    code = """
    async function onRequest(request) {
      Segment.track({ event: 'Raw', userId: 'u', properties: { text: request.text(), keys: Object.keys(request.json()) } })
    }"""
    src = await source(client, code)
    await destination(client, sink, "raw", [src.name])
    body = b'{"zeta": 1,  "alpha": {"b": 2, "a": 1}}'
    async with aiohttp.ClientSession() as session:
        url = pipeline.webhook_url(system.http, src)
        async with session.post(url, data=body, headers=JSON) as response:
            assert response.status == 202
    await eventually(system, lambda: len(sink.received("raw")) >= 1, within=30, what="the event")
    properties = sink.received("raw")[0]["properties"]
    assert properties == {"text": body.decode(), "keys": ["zeta", "alpha"]}


SEEN_BY_INSERT = """
async function onTrack(event, settings) {
  await fetch(settings.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seen: event.event }) })
  return event
}"""

EMITS_INTEGRATIONS = """
async function onRequest(request) {
  for (const e of request.json().events) Segment.track({ event: e.event, userId: 'u', integrations: e.integrations })
}"""


async def test_integrations_object_filters_before_insert_and_destination(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    fn = await deployed(
        client, INSERT_DESTINATION, SEEN_BY_INSERT, settings_schema=[pipeline.URL_SETTING]
    )
    insert = await client.instances.create(
        fn.name, "seen", settings={"url": sink.url("integrations-insert")}
    )
    src = await source(client, EMITS_INTEGRATIONS)
    dest = await destination(client, sink, "integrations", [src.name], insert_instance=insert.name)
    function = await client.functions.get(dest.function)
    workspace = await client.workspaces.get()
    key = f"{function.display_name} ({workspace.display_name})"
    events = [
        {"event": "Only me", "integrations": {"All": False, key: True}},
        {"event": "Not me", "integrations": {key: False}},
        {"event": "Nobody", "integrations": {"All": False}},
        {"event": "Wrong case", "integrations": {"All": False, key.upper(): True}},
        {"event": "Everyone", "integrations": {"All": True}},
    ]
    filtered = "fnbox_delivery_filtered_total"
    before = await metric(system, filtered)
    await post(system, src, {"events": events})

    async def routed() -> bool:
        return (
            len(sink.received("integrations")) >= 2 and await metric(system, filtered) >= before + 3
        )

    await eventually(system, routed, within=60, what="2 delivered and 3 filtered events")
    assert sorted(str(e["event"]) for e in sink.received("integrations")) == ["Everyone", "Only me"]
    # The filtered events never reached the insert function either.
    assert sorted(str(e["seen"]) for e in sink.received("integrations-insert")) == [
        "Everyone",
        "Only me",
    ]
    assert await metric(system, filtered) == before + 3
