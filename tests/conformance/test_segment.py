"""SEGMENT-SPEC §2 (Segment.* API), §8.5, §8.6, §8.7 and the 32 KB part of §8.9.

SPEC → tests
- §8.5 one Segment.track → exactly one track message [doc]
  → test_track_emits_exactly_one_message
- §2 / §8.5 messages are sent only if the handler resolves [legacy doc]
  → test_no_message_is_emitted_when_the_handler_throws
- §2 each call copies its own fields plus the common ones; other keys dropped [boreal]
  → test_each_call_copies_its_fields_and_the_common_fields (identify, track, page, screen,
    group, alias)
- §2 falsy values are dropped [boreal] → test_falsy_values_are_dropped
- §2 anonymousId alone identifies the user [boreal] → test_anonymous_id_is_enough
- §8.6 track without event → "event is required but not defined" [boreal]
  → test_track_without_event_is_a_validation_error
- §2 track with event "" fails too [boreal] → test_track_with_empty_event_is_a_validation_error
- §8.6 identify without userId/anonymousId → "One of userId,anonymousId is required but not
  defined" [boreal] → test_identify_without_user_is_a_validation_error
- §2 page/screen need userId or anonymousId [boreal]
  → test_page_and_screen_without_user_are_validation_errors
- §8.7 group without groupId → ValidationError [boreal]
  → test_group_without_group_id_is_a_validation_error
- §2 alias needs previousId [boreal] → test_alias_without_previous_id_is_a_validation_error
- §8.7 set → one object, not an event, no userId needed [doc+boreal]
  → test_set_emits_an_object_not_an_event
- §2 set needs collection and id [boreal] → test_set_without_collection_or_id_is_a_validation_error
- §2 set's lowercase collection rule is not checked [boreal]
  → test_set_does_not_check_collection_case
- §2 a caught ValidationError lets the handler go on [boreal: the call throws, queues nothing]
  → test_caught_validation_error_queues_nothing
- §2 / §8.9 a message over 32 KB → "failed calling Tracking API: the message is too large and
  over the maximum 32KB limit" [doc] → test_message_over_32_kb_is_rejected,
  test_message_of_32_kb_is_accepted
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conformance.harness import (
    ERROR,
    OK,
    SOURCE,
    VALIDATION_ERROR,
    Conformance,
    Result,
    describe,
    emitted,
    objects,
    request,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

COMMON = {
    "userId": "u1",
    "anonymousId": "anon-1",
    "context": {"ip": "203.0.113.9"},
    "integrations": {"All": True},
    "messageId": "m-1",
    "sentAt": "2024-05-01T10:00:00.000Z",
    "timestamp": "2024-05-01T09:59:59.000Z",
}
EXTRA = {"receivedAt": "2024-05-01T10:00:01Z", "version": 2, "writeKey": "wk", "foo": "bar"}
TOO_LARGE = "failed calling Tracking API: the message is too large and over the maximum 32KB limit"

# One source function makes the Segment.* calls the webhook body lists, so that the tests share
# one warm worker: {"calls": [[name, argument], ...], "catching": bool, "fail": message}.
CALLER = """
async function onRequest(request) {
  const body = request.json()
  for (const [name, argument] of body.calls) {
    if (!body.catching) { Segment[name](argument); continue }
    try { Segment[name](argument) } catch (e) { console.log(e instanceof ValidationError, e.message) }
  }
  if (body.fail) throw new Error(body.fail)
}"""


async def emit(
    conformance: Conformance, *calls: tuple[str, Any], catching: bool = False, fail: str = ""
) -> Result:
    body = {"calls": [list(c) for c in calls], "catching": catching, "fail": fail}
    return await conformance.run(SOURCE, CALLER, request=request(body))


async def test_track_emits_exactly_one_message(conformance: Conformance) -> None:
    result = await emit(conformance, ("track", {"event": "X", "userId": "u"}))
    assert result.outcome == OK, describe(result)
    assert emitted(result) == [{"type": "track", "event": "X", "userId": "u"}]
    assert not result.objects


async def test_no_message_is_emitted_when_the_handler_throws(conformance: Conformance) -> None:
    result = await emit(
        conformance,
        ("track", {"event": "X", "userId": "u"}),
        ("set", {"collection": "products", "id": "1", "properties": {"a": 1}}),
        fail="after emitting",
    )
    assert result.outcome == ERROR
    assert result.error.message == "after emitting"
    assert not result.events and not result.objects


@pytest.mark.parametrize(
    ("call_name", "own"),
    [
        ("identify", {"traits": {"email": "a@b.c"}}),
        ("track", {"event": "Order Completed", "properties": {"total": 10}}),
        ("page", {"name": "Home", "properties": {"path": "/"}}),
        ("screen", {"name": "Settings", "properties": {"tab": 2}}),
        ("group", {"groupId": "g1", "traits": {"plan": "pro"}}),
        ("alias", {"previousId": "old-id"}),
    ],
)
async def test_each_call_copies_its_fields_and_the_common_fields(
    conformance: Conformance, call_name: str, own: dict[str, Any]
) -> None:
    # Fields of the other calls are dropped too (e.g. identify does not copy `properties`).
    foreign = {"properties": {"x": 1}, "traits": {"y": 2}, "name": "n", "groupId": "gx"}
    result = await emit(conformance, (call_name, foreign | own | COMMON | EXTRA))
    assert result.outcome == OK, describe(result)
    assert emitted(result) == [{"type": call_name} | own | COMMON]


async def test_falsy_values_are_dropped(conformance: Conformance) -> None:
    given = {
        "event": "X",
        "userId": "u",
        "anonymousId": "",
        "properties": None,
        "context": 0,
        "timestamp": False,
    }
    result = await emit(conformance, ("track", given))
    assert emitted(result) == [{"type": "track", "event": "X", "userId": "u"}], describe(result)


async def test_anonymous_id_is_enough(conformance: Conformance) -> None:
    result = await emit(conformance, ("identify", {"anonymousId": "a1", "traits": {"x": 1}}))
    assert emitted(result) == [{"type": "identify", "anonymousId": "a1", "traits": {"x": 1}}]


async def _rejected(conformance: Conformance, name: str, argument: Any) -> tuple[int, str, str]:
    result = await emit(conformance, (name, argument))
    assert not result.events and not result.objects
    return result.outcome, result.error.name, result.error.message


def _invalid(message: str) -> tuple[int, str, str]:
    return VALIDATION_ERROR, "ValidationError", message


NO_USER = "One of userId,anonymousId is required but not defined"


async def test_track_without_event_is_a_validation_error(conformance: Conformance) -> None:
    assert await _rejected(conformance, "track", {"userId": "u"}) == _invalid(
        "event is required but not defined"
    )


async def test_track_with_empty_event_is_a_validation_error(conformance: Conformance) -> None:
    assert await _rejected(conformance, "track", {"event": "", "userId": "u"}) == _invalid(
        "event is required but not defined"
    )


async def test_identify_without_user_is_a_validation_error(conformance: Conformance) -> None:
    assert await _rejected(conformance, "identify", {"traits": {}}) == _invalid(NO_USER)


async def test_page_and_screen_without_user_are_validation_errors(
    conformance: Conformance,
) -> None:
    for call_name in ("page", "screen"):
        assert await _rejected(conformance, call_name, {"name": "Home"}) == _invalid(NO_USER)


async def test_group_without_group_id_is_a_validation_error(conformance: Conformance) -> None:
    assert await _rejected(conformance, "group", {"userId": "u", "traits": {}}) == _invalid(
        "groupId is required but not defined"
    )


async def test_alias_without_previous_id_is_a_validation_error(
    conformance: Conformance,
) -> None:
    assert await _rejected(conformance, "alias", {"userId": "u"}) == _invalid(
        "previousId is required but not defined"
    )


async def test_set_emits_an_object_not_an_event(conformance: Conformance) -> None:
    given = {"collection": "products", "id": "1", "properties": {"price": 10}, "userId": "x"}
    result = await emit(conformance, ("set", given))
    assert result.outcome == OK, describe(result)
    assert not result.events
    assert objects(result) == [{"collection": "products", "id": "1", "properties": {"price": 10}}]


async def test_set_without_collection_or_id_is_a_validation_error(
    conformance: Conformance,
) -> None:
    assert await _rejected(conformance, "set", {"id": "1", "properties": {}}) == _invalid(
        "collection is required but not defined"
    )
    assert await _rejected(conformance, "set", {"collection": "products"}) == _invalid(
        "id is required but not defined"
    )


async def test_set_does_not_check_collection_case(conformance: Conformance) -> None:
    result = await emit(conformance, ("set", {"collection": "Products", "id": "1"}))
    assert objects(result) == [{"collection": "Products", "id": "1"}], describe(result)


async def test_caught_validation_error_queues_nothing(conformance: Conformance) -> None:
    result = await emit(
        conformance,
        ("track", {"userId": "u"}),
        ("track", {"event": "Kept", "userId": "u"}),
        catching=True,
    )
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == ["true event is required but not defined"]
    assert emitted(result) == [{"type": "track", "event": "Kept", "userId": "u"}]


def _padded_track(size: int) -> dict[str, Any]:
    """Track arguments whose message JSON is exactly ``size`` bytes."""
    base = {"type": "track", "event": "Big", "properties": {"pad": ""}, "userId": "u"}
    pad = size - len(orjson.dumps(base))
    assert pad > 0
    return {"event": "Big", "userId": "u", "properties": {"pad": "x" * pad}}


async def test_message_of_32_kb_is_accepted(conformance: Conformance) -> None:
    result = await emit(conformance, ("track", _padded_track(32 * 1024)))
    assert result.outcome == OK, describe(result)
    assert len(result.events[0]) == 32 * 1024


async def test_message_over_32_kb_is_rejected(conformance: Conformance) -> None:
    result = await emit(conformance, ("track", _padded_track(32 * 1024 + 1)))
    assert result.outcome == ERROR
    assert result.error.message == TOO_LARGE
    assert not result.events
