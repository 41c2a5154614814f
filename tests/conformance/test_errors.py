"""SEGMENT-SPEC §3 (error classes → outcomes), §4 (timeouts) and the invocation-level half of
§8.1 to §8.4 and §8.10 (whether an outcome is retried is the pipeline's: test_pipeline.py).

SPEC → tests
- §3 globals EventNotSupported, InvalidEventPayload, ValidationError, RetryError, DropEvent,
  each `class X extends Error { name = 'X' }` [doc+boreal] → test_error_classes_are_errors_named_after_their_class
- §3 / §8.2 ValidationError → Message Rejected → test_validation_error_is_message_rejected
- §3 / §8.2 InvalidEventPayload → Message Rejected → test_invalid_event_payload_is_message_rejected
- §3 / §8.3 plain Error → Bad Request → test_plain_error_is_bad_request
- §3 TypeError and other built-in errors → Bad Request → test_type_error_is_bad_request
- §3 / §8.3 uncaught fetch network error → Bad Request
  → test_uncaught_fetch_network_error_is_bad_request
- §3 / §8.1 EventNotSupported thrown → Unsupported Event Type
  → test_thrown_event_not_supported_is_unsupported_event_type
- §3 / §8.4 RetryError → Retry → test_retry_error_is_retry
- §3 / §4 / §8.4 runtime over the limit (5 s default) → Timeout
  → test_invocation_over_five_seconds_times_out, test_function_timeout_limit_is_enforced
- §4 source insert timeout can be raised to 60 s [doc] → test_timeout_can_be_raised_to_sixty_seconds
- §3 / §8.10 DropEvent in an insert function → Filtered/dropped → test_drop_event_in_insert_function_is_drop
- §3 DropEvent exists for insert functions only → test_drop_event_outside_insert_functions_is_bad_request
- §3 a throw stops execution; the error, console output and outgoing requests are captured
  [doc] → test_failure_captures_error_logs_and_requests
- §3 a thrown non-Error value → Bad Request → test_thrown_string_is_bad_request
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

import socket

import pytest
from fnbox.client import InvalidArgument

from tests.conformance.harness import (
    DESTINATION,
    DROP,
    ERROR,
    EVENT_NOT_SUPPORTED,
    INSERT_DESTINATION,
    INSERT_SOURCE,
    INVALID_EVENT_PAYLOAD,
    OK,
    RETRY,
    TIMEOUT,
    VALIDATION_ERROR,
    Conformance,
    describe,
    event,
    pb,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


# One function throws what the event asks for ({"error": class name, "message"} or {"value"}
# for a non-Error value), so that these tests share one warm worker per function type.
THROWER = """
async function onTrack(event) {
  const p = event.properties
  if (p.error) throw new globalThis[p.error](p.message)
  throw p.value
}"""


async def outcome_of(
    conformance: Conformance, thrown: dict[str, str], type: pb.FunctionType = DESTINATION
) -> tuple[int, str, str]:
    result = await conformance.run(type, THROWER, event=event(properties=thrown))
    return result.outcome, result.error.name, result.error.message


def error(name: str, message: str) -> dict[str, str]:
    return {"error": name, "message": message}


async def test_error_classes_are_errors_named_after_their_class(conformance: Conformance) -> None:
    code = """
    async function onTrack(event) {
      for (const C of [EventNotSupported, InvalidEventPayload, ValidationError, RetryError, DropEvent]) {
        const e = new C('m')
        console.log(C.name, e instanceof Error, e.name, e.message)
      }
    }"""
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == OK, describe(result)
    assert list(result.logs) == [
        f"{name} true {name} m"
        for name in (
            "EventNotSupported",
            "InvalidEventPayload",
            "ValidationError",
            "RetryError",
            "DropEvent",
        )
    ]


async def test_validation_error_is_message_rejected(conformance: Conformance) -> None:
    assert await outcome_of(conformance, error("ValidationError", "bad email")) == (
        VALIDATION_ERROR,
        "ValidationError",
        "bad email",
    )


async def test_invalid_event_payload_is_message_rejected(conformance: Conformance) -> None:
    assert await outcome_of(conformance, error("InvalidEventPayload", "no userId")) == (
        INVALID_EVENT_PAYLOAD,
        "InvalidEventPayload",
        "no userId",
    )


async def test_plain_error_is_bad_request(conformance: Conformance) -> None:
    assert await outcome_of(conformance, error("Error", "boom")) == (ERROR, "Error", "boom")


async def test_type_error_is_bad_request(conformance: Conformance) -> None:
    code = "async function onTrack(event) { event.missing.field }"
    result = await conformance.run(DESTINATION, code, event=event())
    assert (result.outcome, result.error.name) == (ERROR, "TypeError")
    assert "Cannot read properties of undefined" in result.error.message


async def test_uncaught_fetch_network_error_is_bad_request(conformance: Conformance) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = f"async function onTrack(event) {{ await fetch('http://127.0.0.1:{port}/x') }}"
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == ERROR, describe(result)
    assert result.error.name in ("TypeError", "FetchError")
    assert [(r.url, r.status) for r in result.requests] == [(f"http://127.0.0.1:{port}/x", 0)]
    assert result.requests[0].error


async def test_thrown_event_not_supported_is_unsupported_event_type(
    conformance: Conformance,
) -> None:
    assert await outcome_of(conformance, error("EventNotSupported", "not today")) == (
        EVENT_NOT_SUPPORTED,
        "EventNotSupported",
        "not today",
    )


async def test_retry_error_is_retry(conformance: Conformance) -> None:
    assert await outcome_of(conformance, error("RetryError", "rate limited")) == (
        RETRY,
        "RetryError",
        "rate limited",
    )


async def test_invocation_over_five_seconds_times_out(conformance: Conformance) -> None:
    # The platform default (no limit set): 5 s. The handler waits on a timer, not a loop.
    code = "async function onTrack(event) { await new Promise((r) => setTimeout(r, 5400)) }"
    fn = await conformance.deployed(DESTINATION, code)
    assert fn.limits.timeout_ms == 0  # 0 = the platform default
    result = await conformance.invoke(fn.name, event=event())
    assert result.outcome == TIMEOUT, describe(result)
    assert 5000 <= result.duration_ms < 5400


async def test_function_timeout_limit_is_enforced(conformance: Conformance) -> None:
    code = "async function onTrack(event) { console.log('started'); while (true) {} }"
    result = await conformance.run(DESTINATION, code, event=event(), timeout_ms=300)
    assert result.outcome == TIMEOUT, describe(result)
    assert result.duration_ms >= 300


async def test_timeout_can_be_raised_to_sixty_seconds(conformance: Conformance) -> None:
    fn = await conformance.deployed(
        INSERT_SOURCE, "async function onTrack(e) { return e }", timeout_ms=60_000
    )
    assert fn.limits.timeout_ms == 60_000
    with pytest.raises(InvalidArgument):
        await conformance.deployed(
            INSERT_SOURCE, "async function onTrack(e) { return e }", timeout_ms=60_001
        )


async def test_drop_event_in_insert_function_is_drop(conformance: Conformance) -> None:
    thrown = error("DropEvent", "test user")
    result = await conformance.run(INSERT_DESTINATION, THROWER, event=event(properties=thrown))
    assert (result.outcome, result.error.name, result.error.message) == (
        DROP,
        "DropEvent",
        "test user",
    )
    assert not result.HasField("returned")


async def test_drop_event_outside_insert_functions_is_bad_request(
    conformance: Conformance,
) -> None:
    assert await outcome_of(conformance, error("DropEvent", "x")) == (ERROR, "DropEvent", "x")


async def test_failure_captures_error_logs_and_requests(conformance: Conformance) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = f"""
    async function onTrack(event) {{
      console.log('calling the API for', event.userId)
      try {{ await fetch('http://127.0.0.1:{port}/v1/users') }} catch (e) {{ console.warn('fetch failed') }}
      throw new Error('gave up')
      console.log('never printed')
    }}"""
    result = await conformance.run(DESTINATION, code, event=event())
    assert result.outcome == ERROR
    assert (result.error.name, result.error.message) == ("Error", "gave up")
    assert "function.js" in result.error.stack or "onTrack" in result.error.stack
    assert list(result.logs) == ["calling the API for u1", "fetch failed"]
    assert [r.url for r in result.requests] == [f"http://127.0.0.1:{port}/v1/users"]


async def test_thrown_string_is_bad_request(conformance: Conformance) -> None:
    assert await outcome_of(conformance, {"value": "plain string"}) == (
        ERROR,
        "Error",
        "plain string",
    )
