"""Dispatch over real Node workers (fixture worker: real worker.js over a fake sandbox)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import orjson
from fnbox.executor import (
    FunctionType,
    Invocation,
    InvocationResult,
    Outcome,
    PayloadTooLarge,
    WebhookInput,
    WorkerPool,
)

from tests.executor.conftest import (
    PoolFactory,
    fixture_settings,
    invoke,
    pid_alive,
    spec,
    track,
)

SLOW = "async function onTrack(e) { await new Promise(r => setTimeout(r, e.ms)); return e.n }"


async def test_many_calls_in_flight_on_one_worker(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(max_workers_per_function=1))
    fn = spec(SLOW, type=FunctionType.INSERT_DESTINATION)
    t0 = time.monotonic()
    calls = [pool.invoke(fn, track(ms=300, n=i)) for i in range(50)]
    await asyncio.sleep(0)
    results = await asyncio.gather(*calls)
    elapsed = time.monotonic() - t0
    assert [r.returned for r in results] == [str(i).encode() for i in range(50)]
    assert len({r.worker_pid for r in results}) == 1
    # 50 calls of 300 ms each, served concurrently by one worker.
    assert elapsed < 50 * 0.3 / 3, elapsed
    assert pool.stats().by_key == {"fn/1": 1}


async def test_per_worker_cap_queues_and_scales_out(pool_factory: PoolFactory) -> None:
    settings = fixture_settings(
        max_in_flight_per_worker=4, scale_up_in_flight=4, max_workers_per_function=3
    )
    pool = await pool_factory(settings)
    fn = spec(SLOW)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            stats = pool.stats()
            peak = max(peak, stats.in_flight)
            assert stats.in_flight <= 3 * 4
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(pool.invoke(fn, track(ms=300, n=i)) for i in range(40)))
    watcher.cancel()
    assert all(r.outcome is Outcome.OK for r in results)
    # A queue that stays non-empty brings the function up to its cap of workers, no further.
    assert pool.stats().by_key == {"fn/1": 3}
    assert len({r.worker_pid for r in results}) >= 2
    assert peak > 4


async def test_two_functions_never_share_a_worker(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(warm_workers=2))
    a, b = spec(SLOW, key="a/1"), spec(SLOW, key="b/1")
    results = await asyncio.gather(
        *(pool.invoke(f, track(ms=20, n=i)) for i in range(20) for f in (a, b))
    )
    pids_a = {r.worker_pid for r in results[0::2]}
    pids_b = {r.worker_pid for r in results[1::2]}
    assert pids_a and pids_b and not pids_a & pids_b
    again = await invoke(pool, a, track(ms=0, n=0))
    assert again.worker_pid in pids_a


async def test_warm_worker_is_specialised_and_the_pool_refilled(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(warm_workers=2))
    assert pool.stats().workers_warm == 2
    warm = {w.pid for w in pool.supervisor.generic}
    result = await invoke(pool, spec("function onTrack(e) {}"))
    assert result.outcome is Outcome.OK
    assert result.worker_pid in warm
    stats = pool.stats()
    assert stats.by_key == {"fn/1": 1}
    for _ in range(500):
        if pool.stats().workers_warm == 2:
            break
        await asyncio.sleep(0.01)
    assert pool.stats().workers_warm == 2
    assert not {w.pid for w in pool.supervisor.generic} & {result.worker_pid}


async def test_request_and_batch_segments_pass_through(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    source = spec(
        "async function onRequest(r, s) { return {m: r.meta.method, b: r.body, s: s.k} }",
        key="src/1",
        type=FunctionType.SOURCE,
    )
    req = WebhookInput(method="POST", url="https://x/y?a=1", headers={"a": "b"}, body=b"raw\x01")
    result = await pool.invoke(
        source, Invocation(kind="request", request=req, settings=b'{"k":"v"}')
    )
    assert result.outcome is Outcome.OK
    assert orjson.loads(result.events[0]) == {"m": "POST", "b": "raw\x01", "s": "v"}
    batch = spec("async function onBatch(es) { return es.length }", key="b/1")
    events = orjson.dumps([{"type": "track"}] * 3)
    result = await pool.invoke(batch, Invocation(kind="batch", payload=events))
    assert result.outcome is Outcome.OK


async def test_large_payload_crosses_in_many_pipe_chunks(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    fn = spec("function onTrack(e) { return e.blob.length }", type=FunctionType.INSERT_DESTINATION)
    result = await invoke(pool, fn, track(blob="z" * 3_000_000))
    assert result.returned == b"3000000"


def _fd_io(pid: int) -> bool:
    return b"--fd-io" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _stdin_flags(pid: int) -> int:
    fdinfo = Path(f"/proc/{pid}/fdinfo/0").read_text().splitlines()
    return int(next(line for line in fdinfo if line.startswith("flags:")).split()[1], 8)


async def test_a_busy_worker_keeps_its_frames_in_order_across_its_input_switch(
    pool_factory: PoolFactory,
) -> None:
    """A worker that has answered 64 invocations moves its stdin reads from the threadpool
    to process.stdin (fdio.js); calls sent in bursts (several frames per write) and large
    ones (many pipe chunks) around that point all get their own answers from that worker,
    which still exits cleanly on close."""
    pool = await pool_factory(fixture_settings(max_workers_per_function=1))
    fn = spec("function onTrack(e) { return e.n }", type=FunctionType.INSERT_DESTINATION)
    pids = set()
    for start in range(0, 160, 16):
        burst = [
            pool.invoke(fn, track(n=n, blob="z" * (n * 2500))) for n in range(start, start + 16)
        ]
        results = await asyncio.gather(*burst)
        assert [r.returned for r in results] == [str(n).encode() for n in range(start, start + 16)]
        pids |= {r.worker_pid for r in results}
    assert len(pids) == 1
    (pid,) = pids
    if _fd_io(pid):
        # Switched: fd 0 is libuv's now (non-blocking), no longer read through fs.read.
        assert _stdin_flags(pid) & os.O_NONBLOCK
    await pool.close(grace_s=5)
    assert pool.stats().kills == {"closed": 1}
    assert not pid_alive(pid)


async def test_calls_sent_to_a_busy_worker_in_one_loop_iteration_share_one_write(
    pool_factory: PoolFactory,
) -> None:
    """A worker with a call in flight gets the frames sent to it in one loop iteration (a
    stream message's batch) in one write; a lone call on an idle worker is written at once."""
    pool = await pool_factory(fixture_settings(max_workers_per_function=1))
    fn = spec(SLOW, type=FunctionType.INSERT_DESTINATION)
    await invoke(pool, fn, track(ms=0, n=-1))
    (worker,) = [w for w in pool.supervisor.workers if w.key == fn.key]
    writes: list[int] = []
    real_write = worker._write

    def counting_write(data: bytes) -> None:
        writes.append(data.count(b'"t":"invoke"'))
        real_write(data)

    worker._write = counting_write  # type: ignore[method-assign]
    slow = asyncio.ensure_future(pool.invoke(fn, track(ms=300, n=-2)))
    await asyncio.sleep(0.05)
    assert writes == [1]  # idle worker: at once
    burst = await asyncio.gather(*(pool.invoke(fn, track(ms=0, n=n)) for n in range(10)))
    assert [r.returned for r in burst] == [str(n).encode() for n in range(10)]
    assert writes == [1, 10]
    assert (await slow).returned == b"-2"


async def test_payload_over_the_frame_cap_is_refused(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(max_frame_bytes=256 * 1024))
    fn = spec("function onTrack(e) {}")
    try:
        await invoke(pool, fn, track(blob="z" * 300_000))
    except PayloadTooLarge as exc:
        assert exc.reason == "PAYLOAD_TOO_LARGE" and not exc.retryable
    else:
        raise AssertionError("PayloadTooLarge not raised")
    assert pool.stats().workers_total == 0


async def test_user_errors_and_load_failures_are_results(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    thrower = spec("function onTrack(e) { throw new TypeError('nope') }")
    result = await invoke(pool, thrower)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and (result.error.name, result.error.message) == (
        "TypeError",
        "nope",
    )
    broken = spec("throw new Error('top level')", key="broken/1")
    first, second = await invoke(pool, broken), await invoke(pool, broken)
    for r in (first, second):
        assert r.outcome is Outcome.ERROR
        assert r.error is not None and r.error.message == "top level"
    assert pool.stats().kills.get("crashed", 0) == 0


async def test_stray_stdout_does_not_corrupt_frames(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    code = "/* __STRAY_STDOUT__ */ function onTrack(e) { return 1 }"
    fn = spec(code, type=FunctionType.INSERT_DESTINATION)
    results = [await invoke(pool, fn) for _ in range(3)]
    assert all(r.returned == b"1" for r in results)
    assert len({r.worker_pid for r in results}) == 1


async def test_check_syntax_uses_a_dedicated_worker(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    problem = await pool.check_syntax("function onTrack(e) {\n  return (\n}")
    assert problem is not None and problem.line == 3
    assert await pool.check_syntax("function onTrack(e) { return 1 }") is None
    result = await invoke(pool, spec("function onTrack(e) {}"))
    assert pool.supervisor.checker is not None and result.worker_pid != pool.supervisor.checker.pid
    assert pool.supervisor.checker.key is None


# Returns when its body started (Node's wall clock, ms), then waits e.ms.
STARTED_AT = (
    "async function onTrack(e) { const at = Date.now();"
    " await new Promise(r => setTimeout(r, e.ms)); return at }"
)


def started_at(result: InvocationResult) -> int:
    assert result.returned is not None, result
    return int(result.returned)


BUSY = "function onTrack(e) { const end = Date.now() + e.ms; while (Date.now() < end) {} return 1 }"


async def test_calls_for_a_busy_worker_are_held_for_one_write(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(warm_workers=1, batch_window_ms=50))
    fn = spec(STARTED_AT, type=FunctionType.INSERT_DESTINATION)
    # The first call rides right behind the load frame: not held (a cold start must not wait).
    sent = time.time() * 1000
    first = await pool.invoke(fn, track(ms=0))
    assert started_at(first) - sent < 45
    # A lone call on an idle worker goes at once; calls made while it is busy wait for the
    # batch window, then reach the worker together.
    sent_lone = time.time() * 1000
    lone = asyncio.ensure_future(pool.invoke(fn, track(ms=300)))
    await asyncio.sleep(0.01)
    sent_held = time.time() * 1000
    held = await asyncio.gather(*(pool.invoke(fn, track(ms=0)) for _ in range(3)))
    assert started_at(await lone) - sent_lone < 45
    starts = [started_at(r) for r in held]
    assert min(starts) - sent_held >= 45, (sent_held, starts)
    assert len({r.worker_pid for r in [*held, first]}) == 1


async def test_calls_that_must_not_wait_are_not_held(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(warm_workers=1, batch_window_ms=50))
    fn = spec(STARTED_AT, type=FunctionType.INSERT_DESTINATION)
    await pool.invoke(fn, track(ms=0))
    busy = asyncio.ensure_future(pool.invoke(fn, track(ms=300)))
    await asyncio.sleep(0.01)
    # While the worker is busy, a call that may wait is held for the window; one that may
    # not (a streamed call) goes at the next loop turn and takes the held one along.
    sent = time.time() * 1000
    held = asyncio.ensure_future(pool.invoke(fn, track(ms=0)))
    await asyncio.sleep(0.005)
    streamed = await pool.invoke(fn, dataclasses.replace(track(ms=0), hold=False))
    assert started_at(streamed) - sent < 45
    assert started_at(await held) - sent < 45
    assert (await busy).outcome is Outcome.OK
    # Alone on the busy worker, a streamed call is not held either.
    busy = asyncio.ensure_future(pool.invoke(fn, track(ms=300)))
    await asyncio.sleep(0.01)
    sent = time.time() * 1000
    alone = await pool.invoke(fn, dataclasses.replace(track(ms=0), hold=False))
    assert started_at(alone) - sent < 45
    assert len({(await busy).worker_pid, alone.worker_pid}) == 1


async def test_a_worker_waiting_on_io_takes_calls_before_another_starts(
    pool_factory: PoolFactory,
) -> None:
    async def load(pool: WorkerPool) -> set[int]:
        # Calls that only wait on a timer, 8 more every 50 ms: up to ~48 in flight.
        fn = spec(SLOW, type=FunctionType.INSERT_DESTINATION)
        calls = []
        for _ in range(12):
            calls += [asyncio.ensure_future(pool.invoke(fn, track(ms=300, n=i))) for i in range(8)]
            await asyncio.sleep(0.05)
        results = await asyncio.gather(*calls)
        assert all(r.outcome is Outcome.OK for r in results)
        return {r.worker_pid for r in results}

    settings: dict[str, Any] = {"scale_up_in_flight": 4, "max_workers_per_function": 3}
    # By the in-flight count alone (scale_up_cpu=0), such a function spreads over workers;
    # by default a worker that is not computing keeps them all (up to its in-flight cap).
    by_count = await pool_factory(fixture_settings(scale_up_cpu=0, **settings))
    assert len(await load(by_count)) > 1
    by_cpu = await pool_factory(fixture_settings(**settings))
    assert len(await load(by_cpu)) == 1


async def test_a_busy_computing_worker_gets_a_sibling(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(
        fixture_settings(scale_up_in_flight=4, max_workers_per_function=2, batch_window_ms=0)
    )
    fn = spec(BUSY, type=FunctionType.INSERT_DESTINATION)
    # 15 ms of CPU per call; more calls come while the worker computes, so the pool looks
    # again once the worker's CPU load is known (after ~0.25 s).
    calls = [asyncio.ensure_future(pool.invoke(fn, track(ms=15))) for _ in range(30)]
    for _ in range(30):
        await asyncio.sleep(0.02)
        calls.append(asyncio.ensure_future(pool.invoke(fn, track(ms=15))))
    results = await asyncio.gather(*calls)
    assert all(r.outcome is Outcome.OK for r in results)
    assert len({r.worker_pid for r in results}) == 2
