"""Flooding the way out: console output, giant log lines and results, 100k emitted events,
oversized single events and a result header beyond the frame cap. Each ends as a clear
outcome on its own call; the stream to the worker stays intact (the next call works)."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import time

import pytest

from tests.security.helpers import INSERT, SOURCE, Server, outcome

pytestmark = pytest.mark.asyncio(loop_scope="session")
LOG_CAP = 16 * 1024
FRAME_CAP = 1024 * 1024
EXECUTOR = {
    "max_log_bytes": LOG_CAP,
    "max_frame_bytes": FRAME_CAP,
    "max_result_bytes": 4 * 1024 * 1024,
    "max_events": 10_000,
}


def assert_capped_logs(result: object) -> None:
    logs = list(getattr(result, "logs", []))
    assert getattr(result, "logs_truncated", False)
    assert logs[-1].startswith("… logs truncated")
    assert sum(len(line.encode()) + 1 for line in logs[:-1]) <= LOG_CAP


@pytest.mark.parametrize("method", ["log", "error", "warn", "info", "debug"])
async def test_console_flood_is_capped(server: Server, method: str) -> None:
    code = f"async function onTrack(e) {{ const line = 'z'.repeat(200); for (let i = 0; i < 20000; i++) console.{method}(line); return 'done'; }}"
    t0 = time.monotonic()
    result = await server.attack(server.run(code, timeout_ms=5000))
    assert outcome(result) == "OK", result.error
    assert_capped_logs(result)
    assert time.monotonic() - t0 < 5


async def test_giant_log_line_is_dropped_not_forwarded(server: Server) -> None:
    code = "async function onTrack(e) { console.log('x'.repeat(8 << 20)); console.log('after'); }"
    result = await server.attack(server.run(code, timeout_ms=5000))
    assert outcome(result) == "OK", result.error
    assert result.logs_truncated
    assert sum(map(len, result.logs)) < LOG_CAP


async def test_giant_returned_event_is_an_error_and_the_worker_stays_usable(
    server: Server,
) -> None:
    code = "async function onTrack(e) { if (e.properties.big) e.properties.blob = 'b'.repeat(6 << 20); return e; }"
    big = b'{"type":"track","event":"e","properties":{"big":true}}'
    result = await server.attack(server.run(code, type=INSERT, event=big, timeout_ms=5000))
    assert outcome(result) == "ERROR"
    assert "too large" in result.error.message
    assert not result.HasField("returned")
    small = await server.run(
        code, type=INSERT, event=b'{"type":"track","event":"e","properties":{}}'
    )
    assert outcome(small) == "OK" and small.HasField("returned")


async def test_emitting_100k_events_is_refused(server: Server) -> None:
    code = "async function onRequest(r) { for (let i = 0; i < 100000; i++) Segment.track({ event: 'e' + i, userId: 'u' }); }"
    t0 = time.monotonic()
    result = await server.attack(server.run(code, type=SOURCE, timeout_ms=5000))
    assert outcome(result) == "ERROR"
    assert "too many messages" in result.error.message
    assert len(result.events) == 0
    assert time.monotonic() - t0 < 5


async def test_events_adding_up_beyond_the_result_cap_are_refused(server: Server) -> None:
    code = "async function onRequest(r) { const pad = 'p'.repeat(30000); for (let i = 0; i < 200; i++) Segment.track({ event: 'e', userId: 'u', properties: { pad } }); }"
    result = await server.attack(server.run(code, type=SOURCE, timeout_ms=5000))
    assert outcome(result) == "ERROR"
    assert "too large" in result.error.message
    assert len(result.events) == 0


async def test_one_oversized_event_is_refused(server: Server) -> None:
    code = "async function onRequest(r) { Segment.track({ event: 'e', userId: 'u', properties: { pad: 'p'.repeat(40000) } }); }"
    result = await server.attack(server.run(code, type=SOURCE, timeout_ms=5000))
    assert outcome(result) == "ERROR"
    assert "too large" in result.error.message
    assert len(result.events) == 0


async def test_result_header_beyond_the_frame_cap_is_a_clear_error(server: Server) -> None:
    # Each refused fetch is recorded with its URL: 8 URLs of 256 KiB make a result header
    # larger than the 1 MiB frame cap. The worker must answer with a small error frame.
    code = """
async function onTrack(e) {
  const tail = 'a'.repeat(256 << 10);
  for (let i = 0; i < 8; i++) { try { await fetch('http://127.0.0.1:9/' + tail); } catch (err) {} }
  console.log('x'.repeat(1000));
}"""
    result = await server.attack(server.run(code, timeout_ms=5000))
    assert outcome(result) == "ERROR", result
    assert "frame cap" in result.error.message or "too large" in result.error.message
    again = await server.run(code.replace("8;", "1;"), timeout_ms=5000)
    assert outcome(again) == "OK"
