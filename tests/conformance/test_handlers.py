"""SEGMENT-SPEC §1: function types, handlers and dispatch.

SPEC → tests
- §1 dispatch by event.type [boreal] → test_each_event_type_goes_to_its_handler
- §1 unknown type is a silent no-op [boreal] → test_unknown_event_type_is_a_silent_no_op
- §1 / §8.1 known type without handler → EventNotSupported "<type> not supported"
  → test_missing_handler_is_unsupported_event_type
- §1 source without onRequest → "request not supported" [boreal]
  → test_source_without_on_request_is_unsupported
- §1 destination return value ignored [doc] → test_destination_return_value_is_ignored
- §1 source return value ignored, output only from Segment.* [doc]
  → test_source_return_value_is_ignored
- §1 handlers are top-level functions, var or assignments [boreal]
  → test_handlers_may_be_var_or_plain_assignment
- §1 top-level const/let handler is a SyntaxError [boreal]
  → test_top_level_const_handler_is_a_syntax_error_on_save,
    test_top_level_const_handler_is_a_syntax_error_on_run
- §1 no module/exports/require: "exports is not defined" [doc, legacy FAQ]
  → test_exports_is_a_reference_error
- §1 renaming a handler changes the type it listens to [doc]
  → test_renamed_handler_listens_to_its_new_type
- §1 destination without onBatch gets events one at a time [doc]
  → test_destination_without_on_batch_gets_events_one_at_a_time
- §1 source insert has no onBatch [doc] → test_source_insert_ignores_on_batch
- §1 / §8.10 insert returns the event it forwards [doc]
  → test_insert_function_forwards_the_returned_event
- §1 insert returns nothing → not forwarded [infer] → test_insert_function_returning_nothing_drops
- §1 insert: one event in, at most one event out [doc]
  → test_insert_function_returns_at_most_one_event
- §1 / §8.10 insert without a handler for the type → blocked (Unsupported Event Type) [doc]
  → test_insert_function_without_handler_blocks_the_event
- §1 unknown type: a no-op in boreal; an insert function passes it through unchanged (fnbox
  choice, docs/segment-compat.md) → test_insert_function_passes_unknown_event_types_through
- §1 source insert returns the event to pass it through [doc]
  → test_source_insert_passes_the_returned_event_through
- §1 one insert function per destination, one insert may serve many destinations [doc]
  → test_one_insert_instance_serves_many_destinations
"""

from __future__ import annotations

import orjson
import pytest
from fnbox.client import InvalidArgument

from tests.conformance.harness import (
    DESTINATION,
    DROP,
    ERROR,
    EVENT_NOT_SUPPORTED,
    INSERT_DESTINATION,
    INSERT_SOURCE,
    OK,
    SOURCE,
    Conformance,
    describe,
    emitted,
    event,
    events,
    request,
    returned,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

TYPES = {
    "identify": "onIdentify",
    "track": "onTrack",
    "page": "onPage",
    "screen": "onScreen",
    "group": "onGroup",
    "alias": "onAlias",
    "delete": "onDelete",
}
ALL_HANDLERS = "\n".join(
    f"async function {name}(event, settings) {{ console.log('{name} ' + event.type) }}"
    for name in TYPES.values()
)


async def test_each_event_type_goes_to_its_handler(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, ALL_HANDLERS)
    for type, handler in TYPES.items():
        result = await conformance.invoke(fn.name, event=event(type, userId="u1"))
        assert result.outcome == OK, describe(result)
        assert list(result.logs) == [f"{handler} {type}"]


async def test_unknown_event_type_is_a_silent_no_op(conformance: Conformance) -> None:
    result = await conformance.run(DESTINATION, ALL_HANDLERS, event=event("purchase"))
    assert result.outcome == OK, describe(result)
    assert not result.logs and not result.error.name


async def test_missing_handler_is_unsupported_event_type(conformance: Conformance) -> None:
    code = "async function onTrack(event) { console.log('track') }"
    result = await conformance.run(DESTINATION, code, event=event("identify", userId="u1"))
    assert result.outcome == EVENT_NOT_SUPPORTED
    assert (result.error.name, result.error.message) == (
        "EventNotSupported",
        "identify not supported",
    )
    assert not result.logs


async def test_source_without_on_request_is_unsupported(conformance: Conformance) -> None:
    code = "async function onTrack(event) {}"
    result = await conformance.run(SOURCE, code, request=request({"a": 1}))
    assert result.outcome == EVENT_NOT_SUPPORTED
    assert (result.error.name, result.error.message) == (
        "EventNotSupported",
        "request not supported",
    )


async def test_destination_return_value_is_ignored(conformance: Conformance) -> None:
    code = "async function onTrack(event) { return { ...event, event: 'Changed' } }"
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == OK, describe(result)
    assert not result.HasField("returned") and not result.events


async def test_source_return_value_is_ignored(conformance: Conformance) -> None:
    code = """
    async function onRequest(request) {
      Segment.track({ event: 'Hooked', userId: 'u1' })
      return { status: 201, body: 'custom', events: [{ type: 'track', event: 'Ignored' }] }
    }"""
    result = await conformance.run(SOURCE, code, request=request({}))
    assert result.outcome == OK, describe(result)
    assert emitted(result) == [{"type": "track", "event": "Hooked", "userId": "u1"}]
    assert not result.HasField("returned")


async def test_handlers_may_be_var_or_plain_assignment(conformance: Conformance) -> None:
    code = """
    var onTrack = async function (event) { console.log('var ' + event.type) }
    onIdentify = async (event) => { console.log('assigned ' + event.type) }
    """
    fn = await conformance.deployed(DESTINATION, code)
    tracked = await conformance.invoke(fn.name, event=event())
    identified = await conformance.invoke(fn.name, event=event("identify", userId="u1"))
    assert (tracked.outcome, list(tracked.logs)) == (OK, ["var track"]), describe(tracked)
    assert (identified.outcome, list(identified.logs)) == (OK, ["assigned identify"])


async def test_top_level_const_handler_is_a_syntax_error_on_save(
    conformance: Conformance,
) -> None:
    code = "const onTrack = async (event) => {}"
    with pytest.raises(InvalidArgument) as caught:
        await conformance.client.functions.create("const handler", DESTINATION, code)
    assert "Identifier 'onTrack' has already been declared" in str(caught.value)
    assert caught.value.metadata["line"] == "1"


async def test_top_level_const_handler_is_a_syntax_error_on_run(
    conformance: Conformance,
) -> None:
    code = "let onIdentify = async (event) => {}"
    with pytest.raises(InvalidArgument) as caught:
        await conformance.run(DESTINATION, code, event=event("identify", userId="u"))
    assert caught.value.reason == "SYNTAX_ERROR"
    assert "Identifier 'onIdentify' has already been declared" in str(caught.value)


async def test_exports_is_a_reference_error(conformance: Conformance) -> None:
    code = "exports.onTrack = async function (event) {}"
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == ERROR
    assert (result.error.name, result.error.message) == (
        "ReferenceError",
        "exports is not defined",
    )


async def test_renamed_handler_listens_to_its_new_type(conformance: Conformance) -> None:
    # The template's onTrack renamed to onPage: page events now reach it, track events not.
    code = "async function onPage(event) { console.log('got ' + event.name) }"
    fn = await conformance.deployed(DESTINATION, code)
    page = await conformance.invoke(fn.name, event=event("page", name="Home", userId="u"))
    track = await conformance.invoke(fn.name, event=event())
    assert (page.outcome, list(page.logs)) == (OK, ["got Home"]), describe(page)
    assert track.outcome == EVENT_NOT_SUPPORTED
    assert track.error.message == "track not supported"


async def test_destination_without_on_batch_gets_events_one_at_a_time(
    conformance: Conformance,
) -> None:
    code = """
    async function onTrack(event) { console.log('one ' + event.properties.n) }
    async function onIdentify(event) { console.log('id ' + event.userId) }
    """
    batch = events(
        {"type": "track", "event": "A", "userId": "u", "properties": {"n": 1}},
        {"type": "identify", "userId": "u2"},
        {"type": "track", "event": "B", "userId": "u", "properties": {"n": 2}},
    )
    result = await conformance.run(DESTINATION, code, events=batch)
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["one 1", "id u2", "one 2"]
    assert [s.outcome for s in result.batch_statuses] == [OK, OK, OK]


async def test_source_insert_ignores_on_batch(conformance: Conformance) -> None:
    code = """
    async function onBatch(events) { console.log('onBatch'); return events }
    async function onTrack(event) { console.log('onTrack'); return event }
    """
    batch = events(
        {"type": "track", "event": "A", "userId": "u"},
        {"type": "track", "event": "B", "userId": "u"},
    )
    result = await conformance.run(INSERT_SOURCE, code, events=batch)
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["onTrack", "onTrack"]
    assert [orjson.loads(s.returned)["event"] for s in result.batch_statuses] == ["A", "B"]


async def test_insert_function_forwards_the_returned_event(conformance: Conformance) -> None:
    code = """
    async function onTrack(event) {
      event.properties = { ...event.properties, enriched: true }
      return event
    }"""
    fn = await conformance.deployed(INSERT_DESTINATION, code)
    result = await conformance.invoke(fn.name, event=event(properties={"total": 9}))
    assert result.outcome == OK, describe(result)
    assert returned(result) == {
        "type": "track",
        "event": "Order Completed",
        "userId": "u1",
        "properties": {"total": 9, "enriched": True},
    }


async def test_insert_function_returning_nothing_drops(conformance: Conformance) -> None:
    code = "async function onTrack(event) { console.log('seen') }"
    result = await conformance.run(INSERT_DESTINATION, code, event=event())
    assert result.outcome == DROP, describe(result)
    assert not result.HasField("returned")
    assert list(result.logs) == ["seen"]


async def test_insert_function_returns_at_most_one_event(conformance: Conformance) -> None:
    for value in ("[event, event]", "'not an event'"):
        code = f"async function onTrack(event) {{ return {value} }}"
        result = await conformance.run(INSERT_DESTINATION, code, event=event())
        assert result.outcome == ERROR, describe(result)
        assert not result.HasField("returned")
        assert "must return one event" in result.error.message


async def test_insert_function_without_handler_blocks_the_event(
    conformance: Conformance,
) -> None:
    code = "async function onTrack(event) { return event }"
    result = await conformance.run(INSERT_DESTINATION, code, event=event("group", groupId="g"))
    assert result.outcome == EVENT_NOT_SUPPORTED
    assert result.error.message == "group not supported"
    assert not result.HasField("returned")


async def test_insert_function_passes_unknown_event_types_through(
    conformance: Conformance,
) -> None:
    code = "async function onTrack(event) { throw new Error('not called') }"
    given = event("experiment_viewed", userId="u", properties={"variant": "b"})
    result = await conformance.run(INSERT_DESTINATION, code, event=given)
    assert result.outcome == OK, describe(result)
    assert returned(result) == orjson.loads(given)


async def test_source_insert_passes_the_returned_event_through(
    conformance: Conformance,
) -> None:
    code = "async function onIdentify(event) { event.traits.plan = 'pro'; return event }"
    fn = await conformance.deployed(INSERT_SOURCE, code)
    result = await conformance.invoke(
        fn.name, event=event("identify", userId="u", traits={"email": "a@b.c"})
    )
    assert result.outcome == OK, describe(result)
    assert returned(result) == {
        "type": "identify",
        "userId": "u",
        "traits": {"email": "a@b.c", "plan": "pro"},
    }


async def test_one_insert_instance_serves_many_destinations(conformance: Conformance) -> None:
    insert = await conformance.deployed(
        INSERT_DESTINATION, "async function onTrack(event) { return event }"
    )
    insert_instance = await conformance.instance(insert.name, name="shared insert")
    destination = await conformance.deployed(DESTINATION, "async function onTrack() {}")
    made = [
        await conformance.client.instances.create(
            destination.name, f"dest {i}", insert_instance=insert_instance.name
        )
        for i in range(2)
    ]
    for instance in made:
        got = await conformance.client.instances.get(instance.name)
        assert got.insert_instance == insert_instance.name  # exactly one insert per destination
