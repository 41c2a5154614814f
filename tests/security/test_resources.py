"""Starving the service: memory bombs on and off the V8 heap, loops that never yield (sync,
async, microtasks, Atomics), deep recursion, and timers left running after the invocation.

Each bomb runs with small limits (memory_mib 128, a 1-3 s timeout) so the suite stays fast.
A worker that dies or times out fails only its own call, is never reused, and is replaced.
"""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from fnbox.functions.v1 import invocation_pb2 as ipb

from tests.security.helpers import Server, error_reason, eventually, outcome

pytestmark = pytest.mark.asyncio(loop_scope="session")
EXECUTOR = {
    "crash_loop_max_crashes": 3,
    "crash_loop_window_s": 60,
    "crash_loop_cooldown_s": 60,
    "load_timeout_ms": 2000,
}


def kills(server: Server, reason: str) -> int:
    return server.service.pool.stats().kills.get(reason, 0)


async def assert_dead_or_timed_out(server: Server, code: str, timeout_ms: int) -> str:
    """Run a bomb; it must end as a TIMEOUT outcome or a retryable WORKER_CRASHED status,
    within its deadline plus slack. Returns what happened."""
    t0 = time.monotonic()
    async with server.benign_traffic():
        try:
            result = await server.run(code, timeout_ms=timeout_ms, memory_mib=128)
            what = outcome(result)
            assert what == "TIMEOUT", (what, result.error)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            what = error_reason(error)
            assert what == "WORKER_CRASHED", (what, error.details())
    assert time.monotonic() - t0 < timeout_ms / 1000 + 3
    return what


async def test_heap_bomb_kills_only_its_worker(server: Server) -> None:
    code = "async function onTrack(e) { const a = []; for (;;) a.push({ i: a.length, s: 'x' + a.length }); }"
    crashed = kills(server, "crashed") + kills(server, "oom")
    what = await assert_dead_or_timed_out(server, code, timeout_ms=3000)
    if what == "WORKER_CRASHED":
        # Counted when the worker is reaped, which may finish after the reply went out.
        await eventually(lambda: kills(server, "crashed") + kills(server, "oom") > crashed)


async def test_off_heap_buffer_bomb_is_killed_by_the_memory_cgroup(server: Server) -> None:
    code = "async function onTrack(e) { const keep = []; for (;;) keep.push(new Uint8Array(32 << 20).fill(1)); }"
    oom = kills(server, "oom")
    what = await assert_dead_or_timed_out(server, code, timeout_ms=3000)
    if server.service.pool.host.memory is not None:
        assert what == "WORKER_CRASHED"
        await eventually(lambda: kills(server, "oom") == oom + 1)


async def test_buffer_alloc_bomb(server: Server) -> None:
    code = "async function onTrack(e) { const keep = []; for (;;) keep.push(Buffer.alloc(8 << 20, 7)); }"
    await assert_dead_or_timed_out(server, code, timeout_ms=2000)


async def test_string_and_array_length_bombs_are_caught_errors(server: Server) -> None:
    code = """
async function onTrack(e) {
  const out = [];
  try { let s = 'x'; for (;;) s += s; } catch (err) { out.push(err.name); }
  try { new Array(2 ** 32); } catch (err) { out.push(err.name); }
  try { new ArrayBuffer(2 ** 40); } catch (err) { out.push(err.name); }
  console.log(out.join(' '));
}"""
    result = await server.attack(server.run(code, timeout_ms=3000, memory_mib=128))
    assert outcome(result) == "OK", result.error
    assert result.logs[0] == "RangeError RangeError RangeError"


async def test_sync_infinite_loop_times_out_and_the_worker_is_replaced(server: Server) -> None:
    code = "async function onTrack(e) { if (e.properties.loop) for (;;) {} console.log('fine'); }"
    timeouts = kills(server, "timeout")
    t0 = time.monotonic()
    result = await server.attack(
        server.run(
            code, event=b'{"type":"track","event":"e","properties":{"loop":true}}', timeout_ms=1000
        )
    )
    assert outcome(result) == "TIMEOUT"
    assert 1.0 <= time.monotonic() - t0 < 4.0
    assert "1000 ms" in result.error.message
    await eventually(lambda: kills(server, "timeout") == timeouts + 1)
    again = await server.run(
        code, event=b'{"type":"track","event":"e","properties":{}}', timeout_ms=1000
    )
    assert outcome(again) == "OK" and list(again.logs) == ["fine"]  # a fresh worker


async def test_top_level_loop_times_out_while_loading(server: Server) -> None:
    code = "for (;;) {}\nasync function onTrack(e) {}"
    t0 = time.monotonic()
    result = await server.attack(server.run(code, timeout_ms=1000))
    assert outcome(result) == "TIMEOUT"
    assert "loading" in result.error.message
    assert time.monotonic() - t0 < 2.0 + 3


async def test_async_infinite_loop_times_out(server: Server) -> None:
    code = "async function onTrack(e) { await null; for (;;) {} }"
    result = await server.attack(server.run(code, timeout_ms=1000))
    assert outcome(result) == "TIMEOUT"


async def test_microtask_flood_times_out(server: Server) -> None:
    # Each turn chains one more promise onto the last, so the flood also fills the heap: on a
    # fast machine the worker aborts (heap limit) before the deadline kills it.
    code = "async function onTrack(e) { const spin = () => Promise.resolve().then(spin); spin(); await new Promise(() => {}); }"
    await assert_dead_or_timed_out(server, code, timeout_ms=1000)


async def test_atomics_wait_forever_times_out(server: Server) -> None:
    code = """
async function onTrack(e) {
  const SAB = globalThis.SharedArrayBuffer || new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer.constructor;
  Atomics.wait(new Int32Array(new SAB(4)), 0, 0);
}"""
    result = await server.attack(server.run(code, timeout_ms=1000))
    # Without SharedArrayBuffer the attempt is an error; with it, the deadline ends it.
    assert outcome(result) in {"TIMEOUT", "ERROR"}, result.error


async def test_deep_recursion_is_a_caught_error(server: Server) -> None:
    code = "function down(n) { return down(n + 1) + 1; } async function onTrack(e) { down(0); }"
    result = await server.attack(server.run(code, timeout_ms=3000))
    assert outcome(result) == "ERROR"
    assert result.error.name == "RangeError"


async def test_busy_async_loop_with_yields_times_out(server: Server) -> None:
    code = "async function onTrack(e) { for (;;) { const t = Date.now(); while (Date.now() - t < 5) {} await new Promise((r) => setTimeout(r, 0)); } }"
    result = await server.attack(server.run(code, timeout_ms=1000))
    assert outcome(result) == "TIMEOUT"


async def test_slow_fetch_is_bounded_by_the_deadline(server: Server) -> None:
    # A fetch nobody answers (a loopback port that accepts nothing is refused by policy, so
    # the wait is built in-context instead: a promise that never settles).
    code = "async function onTrack(e) { await new Promise(() => {}); }"
    result = await server.attack(server.run(code, timeout_ms=1000))
    assert outcome(result) == "TIMEOUT"


async def test_timers_that_outlive_the_invocation_do_not_leak_into_the_next(
    server: Server,
) -> None:
    code = """
let n = 0;
let interval = null;
async function onTrack(e) {
  n += 1;
  const mine = n;
  if (mine === 1) interval = setInterval(() => console.log('late from call 1'), 1);
  if (mine === 3) clearInterval(interval);
  await new Promise((r) => setTimeout(r, 20));
  console.log('call ' + mine);
}"""
    first = await server.attack(server.run(code))
    second = await server.run(code)
    third = await server.run(code)
    assert outcome(first) == outcome(second) == outcome(third) == "OK"
    # While call 1 runs its interval's lines are its own; afterwards they belong to no call.
    assert first.logs[-1] == "call 1"
    assert set(first.logs[:-1]) <= {"late from call 1"}
    assert list(second.logs) == ["call 2"]
    assert list(third.logs) == ["call 3"]


async def test_cpu_burnt_after_returning_gets_the_worker_killed(server: Server) -> None:
    # The invocation returns, then a timer spins forever in the idle worker: nobody is waiting
    # on it, so no deadline applies; the idle-CPU watchdog kills it.
    code = "async function onTrack(e) { setTimeout(() => { for (;;) {} }, 10); }"
    before = kills(server, "idle_cpu")
    async with server.benign_traffic():
        result = await server.run(code)
        assert outcome(result) == "OK"
        await eventually(lambda: kills(server, "idle_cpu") > before, timeout_s=20)


MODES = """
async function onTrack(e) {
  const mode = e.properties.mode;
  if (mode === 'sleep') await new Promise((r) => setTimeout(r, 3000));
  if (mode === 'bomb') { const keep = []; for (;;) keep.push(new Uint8Array(32 << 20).fill(1)); }
  if (mode === 'loop') for (;;) {}
  console.log('survived ' + mode);
}"""


def event(mode: str) -> bytes:
    return b'{"type":"track","event":"e","properties":{"mode":"%s"}}' % mode.encode()


@pytest.mark.parametrize("mode", ["bomb", "loop"])
async def test_a_dying_worker_fails_only_its_own_in_flight_calls(server: Server, mode: str) -> None:
    # Three calls wait on the worker when a fourth kills it (OOM or deadline): all four fail,
    # retryably, and the function's next call gets a fresh worker.
    code = MODES + f"\n// {mode}\n"
    warm = await server.run(code, event=event("none"), memory_mib=128)
    assert outcome(warm) == "OK"  # the worker is up
    async with server.benign_traffic():
        sleepers = [
            asyncio.create_task(
                server.run(code, event=event("sleep"), timeout_ms=5000, memory_mib=128)
            )
            for _ in range(3)
        ]
        await asyncio.sleep(0.2)  # they are in flight on the one worker
        killer = server.run(code, event=event(mode), timeout_ms=1000, memory_mib=128)
        outcomes = await asyncio.gather(killer, *sleepers, return_exceptions=True)
    for i, item in enumerate(outcomes):
        if i == 0 and mode == "loop":
            assert isinstance(item, ipb.InvocationResult) and outcome(item) == "TIMEOUT"
            continue
        assert isinstance(item, grpc.aio.AioRpcError), item
        assert item.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(item) == "WORKER_CRASHED"
    after = await server.run(code, event=event("none"), memory_mib=128)
    assert list(after.logs) == ["survived none"]


async def test_a_crash_loop_is_bounded_and_reported(server: Server) -> None:
    code = "async function onTrack(e) { const keep = []; for (;;) keep.push(new Uint8Array(32 << 20).fill(2)); }"
    reasons = []
    async with server.benign_traffic():
        for _ in range(3):
            try:
                result = await server.run(code, timeout_ms=3000, memory_mib=128)
                reasons.append(outcome(result))
            except grpc.aio.AioRpcError as error:
                reasons.append(error_reason(error))
        assert reasons == ["WORKER_CRASHED"] * 3
        spawned = server.service.pool.stats().spawned
        t0 = time.monotonic()
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await server.run(code, timeout_ms=3000, memory_mib=128)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(caught.value) == "CRASH_LOOP"
        assert time.monotonic() - t0 < 1.0  # refused at once, nothing started
    stats = server.service.pool.stats()
    assert len(stats.crash_looping) == 1
    assert stats.spawned - spawned <= 2  # at most warm-pool refills, no worker for the loop
