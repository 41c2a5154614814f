"""Workers that die, garble their stream or never answer: killed, never reused, replaced."""

from __future__ import annotations

import asyncio

import pytest
from fnbox.executor import (
    CrashLoop,
    ExecutorError,
    Outcome,
    WorkerCrashed,
    WorkerStartFailed,
)

from tests.executor.conftest import (
    PoolFactory,
    fixture_settings,
    invoke,
    pid_alive,
    spec,
    track,
)
from tests.support.polling import eventually

OK = "function onTrack(e) { return 1 }"


async def test_crash_on_start_fails_start_and_calls(pool_factory: PoolFactory) -> None:
    with pytest.raises(WorkerStartFailed):
        await pool_factory(fixture_settings("crash_on_start", warm_workers=1))
    pool = await pool_factory(fixture_settings("crash_on_start"))
    with pytest.raises(WorkerCrashed) as info:
        await invoke(pool, spec(OK))
    assert info.value.retryable
    assert "exited with status 3" in str(info.value) or "died" in str(info.value)


async def test_garbage_instead_of_hello(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings("garbage_stdout"))
    with pytest.raises(WorkerStartFailed):
        await invoke(pool, spec(OK))
    await eventually(lambda: pool.stats().kills.get("frame_too_large", 0) == 1)
    assert pool.stats().workers_total == 0


async def test_slow_handshake(pool_factory: PoolFactory) -> None:
    slow = {"FNBOX_FIXTURE_DELAY_MS": "3000"}
    pool = await pool_factory(
        fixture_settings("slow_handshake", handshake_timeout_s=0.3, worker_env=slow)
    )
    with pytest.raises(WorkerStartFailed, match="no hello"):
        await invoke(pool, spec(OK))
    await eventually(lambda: pool.stats().kills.get("handshake_timeout", 0) == 1)
    quick = {"FNBOX_FIXTURE_DELAY_MS": "50"}
    pool = await pool_factory(fixture_settings("slow_handshake", worker_env=quick))
    assert (await invoke(pool, spec(OK))).outcome is Outcome.OK


async def test_crash_mid_call_then_replaced(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    crashing = spec("/* __CRASH_ON_INVOKE__ */ function onTrack(e) {}", key="crash/1")
    healthy = spec(OK, key="ok/1")
    before = await invoke(pool, healthy)
    with pytest.raises(WorkerCrashed) as info:
        await invoke(pool, crashing)
    assert info.value.reason == "WORKER_CRASHED" and info.value.retryable
    assert info.value.cause == "exit"
    assert str(info.value).startswith("the function's worker exited with status 71")
    await eventually(lambda: pool.stats().kills.get("crashed", 0) == 1)
    after = await invoke(pool, healthy)
    assert after.worker_pid == before.worker_pid


@pytest.mark.parametrize(
    ("marker", "reason"),
    [("__FLOOD_ON_INVOKE__", "frame_too_large"), ("__GARBAGE_ON_INVOKE__", "protocol")],
)
async def test_garbled_stream_kills_the_worker(
    pool_factory: PoolFactory, marker: str, reason: str
) -> None:
    pool = await pool_factory(fixture_settings())
    fn = spec(f"/* {marker} */ async function onTrack(e) {{ return 1 }}")
    with pytest.raises(WorkerCrashed):
        await invoke(pool, fn)
    await eventually(lambda: pool.stats().kills.get(reason, 0) == 1)
    pids = {w.pid for w in pool.supervisor.workers}
    assert pids == set(), "a garbled worker must not stay in the pool"


async def test_memory_bomb_is_stopped_by_the_memory_cgroup(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    if pool.host.memory is None:
        pytest.skip(f"no memory cgroup on this host: {pool.host.summary()}")
    fn = spec("/* __BOMB_ON_INVOKE__ */ function onTrack(e) {}", memory_mib=96)
    with pytest.raises(WorkerCrashed) as info:
        await invoke(pool, fn)
    # Said as such, and not worth an automatic retry (the same input would do it again).
    assert info.value.cause == "memory_limit" and not info.value.retryable
    assert "ran out of memory" in str(info.value) and "96 MiB" in str(info.value)
    await eventually(lambda: pool.stats().kills.get("oom", 0) == 1)


async def test_crash_loop_is_bounded_and_other_functions_keep_working(
    pool_factory: PoolFactory,
) -> None:
    settings = fixture_settings(
        crash_loop_max_crashes=3, crash_loop_window_s=60, crash_loop_cooldown_s=30
    )
    pool = await pool_factory(settings)
    crashing = spec("/* __CRASH_ON_LOAD__ */ function onTrack(e) {}", key="loop/1")
    healthy = spec(OK, key="ok/1")
    for _ in range(3):
        with pytest.raises(WorkerCrashed):
            await invoke(pool, crashing)
        assert (await invoke(pool, healthy)).outcome is Outcome.OK
    await eventually(lambda: pool.stats().crash_looping == ["loop/1"])
    spawned = pool.stats().spawned
    for _ in range(5):
        with pytest.raises(CrashLoop) as info:
            await invoke(pool, crashing)
    assert info.value.reason == "CRASH_LOOP" and info.value.retry_after_s > 20
    # The refusal says what the crashes were.
    assert "(the last crash: the function's worker exited with status 72" in str(info.value)
    assert isinstance(info.value, ExecutorError)
    assert pool.stats().spawned == spawned, "no respawn while cooling down"
    assert (await invoke(pool, healthy)).outcome is Outcome.OK


async def test_other_in_flight_calls_fail_retryably_when_a_worker_dies(
    pool_factory: PoolFactory,
) -> None:
    pool = await pool_factory(fixture_settings())
    code = (
        "async function onTrack(e) {"
        " if (e.die) { await null; throw_later(); }"
        " await new Promise(r => setTimeout(r, 5000)) }"
        " function throw_later() { setTimeout(() => { throw new Error('boom') }, 0) }"
    )
    fn = spec(code)
    slow = [asyncio.create_task(invoke(pool, fn, track(die=False))) for _ in range(3)]
    await eventually(lambda: pool.stats().in_flight == 3)
    pid = next(iter(pool.supervisor.workers)).pid
    with pytest.raises(WorkerCrashed, match="boom"):  # An uncaught timer error kills node.
        await invoke(pool, fn, track(die=True))
    for task in slow:
        with pytest.raises(WorkerCrashed):
            await task
    await eventually(lambda: not pid_alive(pid))
