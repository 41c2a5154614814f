"""SEGMENT-SPEC §1 and §4 (onBatch) and the invocation-level half of §8.11 (which entries the
pipeline retries, and batch sizes/windows, are in test_pipeline.py).

SPEC → tests
- §1 onBatch(events[], settings) receives the array [doc] → test_on_batch_receives_the_events_and_settings
- §4 a batch may mix event types [doc] → test_on_batch_gets_mixed_event_types
- §4 / §8.11 statuses returned in input order; 2xx ok, 5xx retried [doc]
  → test_on_batch_statuses_are_paired_in_input_order
- §4 4xx entries are permanent failures [infer] → test_on_batch_4xx_status_is_a_final_failure
- §4 / §8.11 RetryError from onBatch → the whole batch is retried [doc]
  → test_on_batch_retry_error_retries_the_whole_batch
- §4 / §8.11 any other error → the whole batch is discarded [doc]
  → test_on_batch_other_error_fails_the_whole_batch
- §4 a Timeout of onBatch retries the whole batch [doc] → test_on_batch_timeout_times_out_the_whole_batch
- §1 the single-event handlers are the fallback next to onBatch [doc]
  → test_single_event_goes_to_the_single_handler_next_to_on_batch
- §1 insert onBatch returns an array paired by index [doc]
  → test_insert_on_batch_pairs_returned_events_by_index
- §1 insert onBatch returning a subset filters events ("Filtered at insert function") [doc]
  → test_insert_on_batch_missing_entries_are_filtered
- §1 insert onBatch: one event in, at most one out per position [doc]
  → test_insert_on_batch_entry_that_is_not_an_event_fails
- §4 batching defaults: 20 events, 10 s; batchMaxCount raised to 400 [doc, API]
  → test_batch_defaults_are_twenty_events_and_ten_seconds, test_batch_max_count_can_be_raised_to_400
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

import orjson
import pytest

from tests.conformance.harness import (
    DESTINATION,
    DROP,
    ERROR,
    INSERT_DESTINATION,
    OK,
    RETRY,
    TIMEOUT,
    Conformance,
    describe,
    events,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

THREE = events(
    {"type": "track", "event": "A", "userId": "u1"},
    {"type": "identify", "userId": "u2", "traits": {"plan": "pro"}},
    {"type": "page", "name": "Home", "userId": "u3"},
)


def statuses(result: object) -> list[tuple[str, int, str]]:
    from tests.conformance.harness import outcome

    return [
        (outcome(s.outcome), s.status, s.error_message)
        for s in result.batch_statuses  # type: ignore[attr-defined]
    ]


async def test_on_batch_receives_the_events_and_settings(conformance: Conformance) -> None:
    code = """
    async function onBatch(events, settings) {
      console.log(Array.isArray(events), events.length, settings.apiKey)
    }"""
    result = await conformance.run(DESTINATION, code, events=THREE, settings={"apiKey": "k1"})
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["true 3 k1"]
    assert statuses(result) == [("OK", 200, "")] * 3


async def test_on_batch_gets_mixed_event_types(conformance: Conformance) -> None:
    code = "async function onBatch(events) { console.log(events.map((e) => e.type).join(',')) }"
    result = await conformance.run(DESTINATION, code, events=THREE)
    assert list(result.logs) == ["track,identify,page"], describe(result)


async def test_on_batch_statuses_are_paired_in_input_order(conformance: Conformance) -> None:
    code = """
    async function onBatch(events) {
      return events.map((e, i) => i === 1 ? { status: 500, errormessage: 'e' } : { status: 200 })
    }"""
    result = await conformance.run(DESTINATION, code, events=THREE)
    assert result.outcome == OK, describe(result)
    assert statuses(result) == [("OK", 200, ""), ("RETRY", 500, "e"), ("OK", 200, "")]


async def test_on_batch_4xx_status_is_a_final_failure(conformance: Conformance) -> None:
    code = """
    async function onBatch(events) {
      return [{ status: 200 }, { status: 400, errormessage: 'Bad Request' }, { status: 429, errormessage: 'slow down' }]
    }"""
    result = await conformance.run(DESTINATION, code, events=THREE)
    assert statuses(result) == [
        ("OK", 200, ""),
        ("ERROR", 400, "Bad Request"),
        ("RETRY", 429, "slow down"),
    ]


async def test_on_batch_retry_error_retries_the_whole_batch(conformance: Conformance) -> None:
    code = "async function onBatch(events) { throw new RetryError('API down') }"
    result = await conformance.run(DESTINATION, code, events=THREE)
    assert (result.outcome, result.error.message) == (RETRY, "API down")
    assert [s.outcome for s in result.batch_statuses] == [RETRY] * 3


async def test_on_batch_other_error_fails_the_whole_batch(conformance: Conformance) -> None:
    code = "async function onBatch(events) { throw new Error('bad batch') }"
    result = await conformance.run(DESTINATION, code, events=THREE)
    assert (result.outcome, result.error.message) == (ERROR, "bad batch")
    assert statuses(result) == [("ERROR", 400, "bad batch")] * 3


async def test_on_batch_timeout_times_out_the_whole_batch(conformance: Conformance) -> None:
    code = "async function onBatch(events) { await new Promise(() => {}) }"
    result = await conformance.run(DESTINATION, code, events=THREE, timeout_ms=300)
    assert result.outcome == TIMEOUT, describe(result)


async def test_single_event_goes_to_the_single_handler_next_to_on_batch(
    conformance: Conformance,
) -> None:
    code = """
    async function onBatch(events) { console.log('onBatch ' + events.length) }
    async function onTrack(event) { console.log('onTrack ' + event.event) }
    """
    fn = await conformance.deployed(DESTINATION, code)
    single = await conformance.invoke(
        fn.name, event=orjson.dumps({"type": "track", "event": "A", "userId": "u"})
    )
    batch = await conformance.invoke(fn.name, events=THREE)
    assert list(single.logs) == ["onTrack A"], describe(single)
    assert list(batch.logs) == ["onBatch 3"], describe(batch)


async def test_insert_on_batch_pairs_returned_events_by_index(conformance: Conformance) -> None:
    code = """
    async function onBatch(events) {
      return events.map((e, i) => ({ ...e, context: { position: i } }))
    }"""
    result = await conformance.run(INSERT_DESTINATION, code, events=THREE)
    assert result.outcome == OK, describe(result)
    forwarded = [orjson.loads(s.returned) for s in result.batch_statuses]
    assert [(e["type"], e["context"]["position"]) for e in forwarded] == [
        ("track", 0),
        ("identify", 1),
        ("page", 2),
    ]


async def test_insert_on_batch_missing_entries_are_filtered(conformance: Conformance) -> None:
    code = "async function onBatch(events) { return [events[0], null] }"
    result = await conformance.run(INSERT_DESTINATION, code, events=THREE)
    assert [s.outcome for s in result.batch_statuses] == [OK, DROP, DROP], describe(result)
    assert [s.HasField("returned") for s in result.batch_statuses] == [True, False, False]
    assert result.batch_statuses[1].error_message == "filtered at insert function"


async def test_insert_on_batch_entry_that_is_not_an_event_fails(
    conformance: Conformance,
) -> None:
    code = (
        "async function onBatch(events) { return [events[0], [events[1], events[1]], events[2]] }"
    )
    result = await conformance.run(INSERT_DESTINATION, code, events=THREE)
    assert [s.outcome for s in result.batch_statuses] == [OK, ERROR, OK], describe(result)
    assert not result.batch_statuses[1].HasField("returned")
    assert "must return one event" in result.batch_statuses[1].error_message


async def test_batch_defaults_are_twenty_events_and_ten_seconds(
    conformance: Conformance,
) -> None:
    fn = await conformance.deployed(DESTINATION, "async function onBatch(events) {}")
    assert (fn.batch.max_count, fn.batch.max_wait_ms) == (20, 10_000)


async def test_batch_max_count_can_be_raised_to_400(conformance: Conformance) -> None:
    from fnbox.functions.v1 import resources_pb2

    made = await conformance.client.functions.create(
        "big batches",
        DESTINATION,
        "async function onBatch(events) {}",
        batch=resources_pb2.BatchOptions(max_count=400),
    )
    assert made.batch.max_count == 400
