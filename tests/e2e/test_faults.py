"""Failing, slow and recovering destinations; final failures in the DLQ and their replay."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable

import pytest
from fnbox.client import FnboxClient
from fnbox.functions.v1 import resources_pb2

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually

pytestmark = pytest.mark.timeout(240)

BATCH_DESTINATION = """
async function onTrack(event, settings) { throw new Error('onBatch expected') }
async function onBatch(events, settings) {
  const statuses = []
  for (const event of events) {
    const response = await fetch(settings.url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event),
    })
    statuses.push({ status: response.status, errormessage: response.ok ? '' : 'failed' })
  }
  return statuses
}
"""


async def test_endpoint_failing_with_500_and_429_recovers(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    dest = await pipeline.destination(client, "flaky", sink.url("flaky"), [src.name])
    sink.route("flaky").failures = [500, 429, 500, 503, 429]
    acked, _, refused = await pipeline.post_many(
        pipeline.webhook_url(system.http, src), [pipeline.track(i) for i in range(10)]
    )
    assert len(acked) == 10 and refused == 0
    await eventually(
        lambda: len(sink.message_ids("flaky")) == 10, within=90, what="10 distinct events"
    )
    assert sink.route("flaky").attempts >= 15  # the 5 failures were retried
    assert await cli(system, "dlq", "list", "--instance", dest.id) == {"deadLetters": []}


async def test_hanging_destination_does_not_hold_back_others(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    hangs = await pipeline.destination(client, "hangs", sink.url("hangs"), [src.name])
    await pipeline.destination(client, "fine", sink.url("fine"), [src.name])
    sink.route("hangs").hang = True
    started = time.monotonic()
    try:
        acked, _, _ = await pipeline.post_many(
            pipeline.webhook_url(system.http, src), [pipeline.track(i) for i in range(40)]
        )
        assert len(acked) == 40
        await eventually(
            lambda: len(sink.message_ids("fine")) == 40, within=60, what="the healthy destination"
        )
        assert time.monotonic() - started < 60
        await eventually(
            lambda: sink.route("hangs").attempts >= 1, within=30, what="the hanging destination"
        )
        assert not sink.received("hangs")
    finally:
        await client.instances.delete(hangs.name)  # it would retry for the module's lifetime


async def test_hanging_destinations_do_not_starve_a_healthy_one(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    """More invocations hang than the control service runs at once on one InvokeStream
    (grpc.stream_concurrency, 64): 5 destinations x 16 in flight each (DELIVERY__CONCURRENCY),
    held by their endpoint for up to a minute. The healthy destination gets every event while
    they hang: its invocations never queue behind theirs."""
    src = await pipeline.source(client)
    hangers = [
        await pipeline.destination(
            client,
            f"hangs{i}",
            sink.url(f"hangs{i}"),
            [src.name],
            limits=resources_pb2.FunctionLimits(timeout_ms=60000),
        )
        for i in range(5)
    ]
    for i in range(5):
        sink.route(f"hangs{i}").hang = True
    await pipeline.destination(client, "healthy", sink.url("healthy"), [src.name])
    url = pipeline.webhook_url(system.http, src)
    try:
        acked, _, _ = await pipeline.post_many(url, [pipeline.track(i) for i in range(40)])
        assert len(acked) == 40

        def hanging() -> int:
            return sum(sink.route(f"hangs{i}").hanging for i in range(5))

        await eventually(lambda: hanging() > 64, within=60, what="a full stream of hangs")
        await eventually(
            lambda: len(sink.message_ids("healthy")) == 40,
            within=40,  # well before the hanging calls time out
            what=lambda: f"the healthy destination ({len(sink.message_ids('healthy'))}/40)",
        )
        assert hanging() > 64  # still hanging: nothing was freed for the healthy one
    finally:
        for hanger in hangers:
            await client.instances.delete(hanger.name)


async def test_onbatch_partial_failure_retries_only_failed_events(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    await pipeline.destination(
        client,
        "batched",
        sink.url("batched"),
        [src.name],
        code=BATCH_DESTINATION,
        batch=resources_pb2.BatchOptions(max_count=10, max_wait_ms=300),
    )
    sink.route("batched").failures = [500, 500, 500]
    acked, _, _ = await pipeline.post_many(
        pipeline.webhook_url(system.http, src), [pipeline.track(i) for i in range(20)]
    )
    assert len(acked) == 20
    await eventually(
        lambda: len(sink.message_ids("batched")) == 20, within=90, what="20 batched events"
    )
    await asyncio.sleep(0)  # the last retries have already been counted at this point
    assert sink.route("batched").attempts == 23  # 20 events + exactly the 3 failed ones again
    assert max(sink.message_ids("batched").values()) == 1


BATCH_SIZES = """
async function onBatch(events, settings) {
  await fetch(settings.url, { method: 'POST', headers: { 'content-type': 'application/json' },
                              body: JSON.stringify({ size: events.length }) })
}
"""

SINGLE_ONLY = """
async function onTrack(event, settings) {
  await fetch(settings.url, { method: 'POST', headers: { 'content-type': 'application/json' },
                              body: JSON.stringify({ single: event.userId }) })
}
"""


async def test_batching_follows_the_deployed_version_not_the_latest_code(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    dest = await pipeline.destination(
        client,
        "versions",
        sink.url("versions"),
        [src.name],
        code=BATCH_SIZES,
        batch=resources_pb2.BatchOptions(max_count=10, max_wait_ms=2000),
    )
    # Saved, not deployed: the deployed version (onBatch only) keeps receiving the events.
    fn = await client.functions.update(dest.function, code=SINGLE_ONLY)
    url = pipeline.webhook_url(system.http, src)

    def sizes() -> list[int]:
        return [int(str(b["size"])) for b in sink.received("versions") if "size" in b]

    def singles() -> int:
        return len([b for b in sink.received("versions") if "single" in b])

    # The first events a delivery replica sends teach it what the deployed version defines
    # (they go one at a time until its first result); later ones are collected into batches.
    # Each replica learns for itself, so webhooks of 10 events are sent until a batch shows.
    posted = 0
    while posted < 80 and max(sizes(), default=0) <= 1:
        acked, _, _ = await pipeline.post_many(
            url, [{"events": [pipeline.track(i, user=f"r{posted}") for i in range(10)]}]
        )
        assert len(acked) == 1
        posted += 10
        await eventually(
            functools.partial(_at_least, sizes, posted), within=60, what=f"{posted} events"
        )
    assert sum(sizes()) == posted and max(sizes()) > 1, sizes()
    assert singles() == 0
    assert (await cli(system, "dlq", "list", "--instance", dest.id))["deadLetters"] == []

    await client.functions.deploy(fn.name)  # from now on: single events
    acked, _, _ = await pipeline.post_many(
        url, [{"events": [pipeline.track(i, user="c") for i in range(5)]}]
    )
    await eventually(lambda: singles() == 5, within=60, what="5 single events")
    assert sum(sizes()) == posted


def _at_least(sizes: Callable[[], list[int]], total: int) -> bool:
    return sum(sizes()) >= total


async def test_final_failures_fill_the_dlq_and_replay_drains_it(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    dest = await pipeline.destination(client, "rejects", sink.url("rejects"), [src.name])
    sink.route("rejects").failures = [400] * 4
    acked, _, _ = await pipeline.post_many(
        pipeline.webhook_url(system.http, src), [pipeline.track(i) for i in range(4)]
    )
    assert len(acked) == 4

    async def dead() -> list[dict[str, object]]:
        listed = await cli(system, "dlq", "list", "--instance", dest.id)
        return listed["deadLetters"]  # type: ignore[no-any-return]

    await eventually(lambda: _count(dead, 4), within=60, what="4 dead letters", every=0.5)
    letters = await dead()
    shown = await cli(system, "dlq", "show", str(letters[0]["id"]))
    assert shown["error"]["message"] == "endpoint answered 400"
    assert shown["reason"] == "FINAL_OUTCOME" and shown["event"]["type"] == "track"
    assert not sink.received("rejects")

    assert await cli(system, "dlq", "replay", "--instance", dest.id) == {"queued": 4}
    await eventually(
        lambda: len(sink.message_ids("rejects")) == 4, within=60, what="the replayed events"
    )
    await eventually(lambda: _count(dead, 0), within=30, what="an empty DLQ", every=0.5)


async def test_source_retries_exhausted_then_replayed_into_a_fixed_version(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    broken = "async function onRequest(request) { throw new RetryError('upstream busy') }"
    fn = await pipeline.deployed(client, "flaky-source", resources_pb2.FUNCTION_TYPE_SOURCE, broken)
    src = await client.instances.create(fn.name, "flaky-source")
    await pipeline.destination(client, "after-fix", sink.url("after-fix"), [src.name])
    acked, _, _ = await pipeline.post_many(
        pipeline.webhook_url(system.http, src), [pipeline.track(1)]
    )
    assert len(acked) == 1

    async def letters() -> list[dict[str, object]]:
        listed = await cli(system, "dlq", "list", "--instance", src.id)
        return listed["deadLetters"]  # type: ignore[no-any-return]

    await eventually(lambda: _count(letters, 1), within=60, what="the exhausted webhook", every=0.5)
    letter = (await letters())[0]
    assert letter["reason"] == "RETRIES_EXHAUSTED" and letter["attempts"] == 6
    fixed = await client.functions.update(fn.name, code=pipeline.SOURCE)  # saved, not deployed
    await cli(system, "dlq", "replay", str(letter["id"]), "--version", str(fixed.latest_version))
    await eventually(
        lambda: len(sink.received("after-fix")) == 1, within=60, what="the replayed webhook"
    )
    assert sink.received("after-fix")[0]["userId"] == "u1"


async def _count(fetch: object, expected: int) -> bool:
    return len(await fetch()) == expected  # type: ignore[operator]


cli = pipeline.cli
