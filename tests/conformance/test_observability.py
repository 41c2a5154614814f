"""SEGMENT-SPEC §3 (the function's Errors tab) and §6 (logs, usage metering), through
ObservabilityService.

SPEC → tests
- §3 errors show the input, console output, outgoing requests and the error [doc]
  → test_failed_invocation_is_kept_with_input_logs_and_error
- §3 the 100 most recent errors are kept [doc] → test_error_log_keeps_the_100_most_recent_errors
- §3 errors are kept 30 days [doc] → test_error_log_retention_is_30_days
- §6 execution time is metered per function in milliseconds [doc]
  → test_usage_meters_execution_milliseconds_per_function
- §6 a batch counts as one invocation [doc] → test_batch_counts_as_one_invocation
- §6 don't log PII: fnbox redacts sensitive setting values in stored logs (fnbox addition)
  → test_sensitive_setting_values_are_redacted_in_logs
"""

# ruff: noqa: E501  (embedded JavaScript and the SPEC map read better unwrapped)

from __future__ import annotations

import orjson
import pytest
from fnbox.client.observability import ObservabilityAPI
from fnbox.functions.v1 import observability_pb2
from fnbox.server.observability.settings import TelemetrySettings

from tests.conformance.harness import (
    DESTINATION,
    ERROR,
    Conformance,
    event,
    events,
    setting,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

LogEntry = observability_pb2.LogEntry


async def error_entries(conformance: Conformance, function: str) -> list[LogEntry]:
    api = ObservabilityAPI(conformance.client.transport)
    return [e async for e in api.iterate_logs(function, errors_only=True)]


async def wait_for_entries(conformance: Conformance, function: str, count: int) -> list[LogEntry]:
    async def stored() -> bool:
        return len(await error_entries(conformance, function)) >= count

    await eventually(stored, within=20, what=f"{count} error log entries")
    return await error_entries(conformance, function)


async def test_failed_invocation_is_kept_with_input_logs_and_error(
    conformance: Conformance,
) -> None:
    code = """
    async function onTrack(event) {
      console.log('charging', event.properties.orderId)
      throw new Error('card declined')
    }"""
    fn = await conformance.deployed(DESTINATION, code)
    payload = event(properties={"orderId": "o-9"})
    result = await conformance.invoke(fn.name, event=payload)
    assert result.outcome == ERROR
    (entry,) = await wait_for_entries(conformance, fn.name, 1)
    assert (entry.outcome, entry.error.name, entry.error.message) == (
        ERROR,
        "Error",
        "card declined",
    )
    assert list(entry.logs) == ["charging o-9"]
    assert orjson.loads(entry.input) == orjson.loads(payload)
    assert entry.version == result.version


async def test_error_log_keeps_the_100_most_recent_errors(conformance: Conformance) -> None:
    fn = await conformance.deployed(
        DESTINATION, "async function onTrack(e) { throw new Error('n=' + e.properties.n) }"
    )
    for n in range(101):
        await conformance.invoke(fn.name, event=event(properties={"n": n}))

    async def newest_kept() -> bool:
        entries = await error_entries(conformance, fn.name)
        return bool(entries) and entries[0].error.message == "n=100"

    await eventually(newest_kept, within=20, what="the 101st error in the log")
    entries = await error_entries(conformance, fn.name)
    assert len(entries) == 100
    assert [e.error.message for e in entries] == [f"n={n}" for n in range(100, 0, -1)]


async def test_error_log_retention_is_30_days() -> None:
    assert TelemetrySettings().logs_retention_days == 30
    assert TelemetrySettings().logs_max_errors == 100


async def _usage(conformance: Conformance, function: str) -> observability_pb2.GetUsageResponse:
    return await ObservabilityAPI(conformance.client.transport).usage(function=function)


async def test_usage_meters_execution_milliseconds_per_function(conformance: Conformance) -> None:
    code = "async function onTrack(e) { await new Promise((r) => setTimeout(r, 30)); if (e.properties.fail) throw new Error('x') }"
    fn = await conformance.deployed(DESTINATION, code)
    for fail in (False, False, True):
        await conformance.invoke(fn.name, event=event(properties={"fail": fail}))

    async def metered() -> bool:
        return (await _usage(conformance, fn.name)).total_invocations == 3

    await eventually(metered, within=20, what="3 metered invocations")
    usage = await _usage(conformance, fn.name)
    assert (usage.total_invocations, usage.total_errors) == (3, 1)
    assert usage.total_execution_ms >= 3 * 30
    assert [r.function for r in usage.records] == [fn.name]


async def test_batch_counts_as_one_invocation(conformance: Conformance) -> None:
    fn = await conformance.deployed(DESTINATION, "async function onBatch(events) {}")
    batch = events(*({"type": "track", "event": "E", "userId": "u"} for _ in range(5)))
    await conformance.invoke(fn.name, events=batch)

    async def metered() -> bool:
        return (await _usage(conformance, fn.name)).total_invocations >= 1

    await eventually(metered, within=20, what="the metered batch")
    assert (await _usage(conformance, fn.name)).total_invocations == 1


async def test_sensitive_setting_values_are_redacted_in_logs(conformance: Conformance) -> None:
    code = "async function onTrack(e, settings) { console.log('key ' + settings.apiKey); throw new Error('with ' + settings.apiKey) }"
    fn = await conformance.deployed(DESTINATION, code, schema=[setting("apiKey", sensitive=True)])
    instance = await conformance.instance(fn.name, {"apiKey": "sk-live-123456"})
    await conformance.invoke(instance.name, event=event())
    (entry,) = await wait_for_entries(conformance, fn.name, 1)
    assert b"sk-live-123456" not in entry.SerializeToString()
    assert list(entry.logs) == ["key [REDACTED]"]
