"""Deadlines are the parent's: on expiry the worker's process group is SIGKILLed and replaced."""

from __future__ import annotations

import asyncio

import pytest
from fnbox.executor import Outcome, WorkerCrashed

from tests.executor.conftest import (
    PoolFactory,
    fixture_settings,
    invoke,
    pid_alive,
    spec,
    track,
)
from tests.support.polling import eventually

SYNC_LOOP = "function onTrack(e) { if (e.hang) { for (;;) {} } return 1 }"
ASYNC_LOOP = "async function onTrack(e) { await null; if (e.hang) { for (;;) {} } return 1 }"


@pytest.mark.parametrize("code", [SYNC_LOOP, ASYNC_LOOP], ids=["sync", "async"])
async def test_timeout_kills_and_replaces(pool_factory: PoolFactory, code: str) -> None:
    pool = await pool_factory(fixture_settings())
    fn = spec(code, timeout_s=0.3)
    ok = await invoke(pool, fn, track(hang=False))
    result = await invoke(pool, fn, track(hang=True))
    assert result.outcome is Outcome.TIMEOUT
    assert result.error is not None and result.error.name == "TimeoutError"
    assert "300 ms" in result.error.message
    assert result.worker_pid == ok.worker_pid
    await eventually(lambda: not pid_alive(ok.worker_pid), what="the timed-out worker is gone")
    await eventually(lambda: pool.stats().kills == {"timeout": 1})
    after = await invoke(pool, fn, track(hang=False))
    assert after.outcome is Outcome.OK and after.worker_pid != ok.worker_pid


async def test_other_calls_on_a_timed_out_worker_fail_retryably(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    code = (
        "async function onTrack(e) {"
        " if (e.hang) { await new Promise(r => setTimeout(r, 50)); for (;;) {} }"
        " await new Promise(r => setTimeout(r, 2000)) }"
    )
    # Same function version (key), so the same worker; the others have a longer deadline.
    fn, patient = spec(code, timeout_s=0.5), spec(code, timeout_s=10)
    hanging = asyncio.create_task(invoke(pool, fn, track(hang=True)))
    others = [asyncio.create_task(invoke(pool, patient, track(hang=False))) for _ in range(3)]
    result = await hanging
    assert result.outcome is Outcome.TIMEOUT
    for task in others:
        with pytest.raises(WorkerCrashed) as info:
            await task
        assert info.value.retryable and info.value.cause == "timeout"
        assert str(info.value).startswith(
            "the function's worker was stopped: another invocation on it ran past its time limit"
        )


async def test_timeouts_are_clamped_to_the_maximum(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(max_timeout_ms=200))
    result = await invoke(pool, spec(SYNC_LOOP, timeout_s=30), track(hang=True))
    assert result.outcome is Outcome.TIMEOUT
    assert result.error is not None and "200 ms" in result.error.message


async def test_worker_that_never_answers(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings("hang", load_timeout_ms=300))
    result = await invoke(pool, spec("function onTrack(e) {}", timeout_s=0.3))
    assert result.outcome is Outcome.TIMEOUT
    assert result.error is not None and "loading timed out" in result.error.message
    with pytest.raises(WorkerCrashed, match="timed out"):
        await pool.check_syntax("1 +")
    await eventually(lambda: pool.stats().kills == {"load_timeout": 1, "timeout": 1})


async def test_quiet_worker_that_stops_answering_is_replaced(pool_factory: PoolFactory) -> None:
    settings = fixture_settings(
        "hang",
        warm_workers=1,
        liveness_interval_s=0.05,
        maintenance_interval_s=0.05,
        handshake_timeout_s=0.5,
        spawn_backoff_max_s=0.1,
    )
    pool = await pool_factory(settings)
    (first,) = pool.supervisor.generic
    await eventually(lambda: not pid_alive(first.pid))
    await eventually(lambda: pool.stats().kills.get("unresponsive", 0) >= 1)
    await eventually(lambda: pool.stats().spawned >= 2, what="a replacement was started")


async def test_quiet_worker_that_answers_is_kept(pool_factory: PoolFactory) -> None:
    settings = fixture_settings(
        warm_workers=1, liveness_interval_s=0.05, maintenance_interval_s=0.05
    )
    pool = await pool_factory(settings)
    (worker,) = pool.supervisor.generic
    since = worker.last_alive
    await eventually(lambda: worker.last_alive > since + 0.2, what="a few pings answered")
    assert pid_alive(worker.pid) and pool.stats().kills == {}
