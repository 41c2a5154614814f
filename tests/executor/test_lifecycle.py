"""Start, OS limits, eviction and shutdown of the pool."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fnbox.executor import ExecutorClosed, Outcome, WorkerPool

from tests.executor.conftest import (
    PoolFactory,
    fixture_settings,
    invoke,
    pid_alive,
    spec,
    track,
)
from tests.support.polling import eventually

SLOW = "async function onTrack(e) { await new Promise(r => setTimeout(r, e.ms)); return 1 }"


def proc_file(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


def proc_limit(pid: int, name: str) -> tuple[str, str]:
    for line in proc_file(pid, "limits").decode().splitlines():
        if line.startswith(name):
            soft, hard = line[len(name) :].split()[:2]
            return soft, hard
    raise AssertionError(f"{name} not in /proc/{pid}/limits")


def read(path: Path) -> str:
    return path.read_text().strip()


async def test_worker_runs_with_its_limits(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(nofile=100, pids_max=24))
    result = await invoke(pool, spec("function onTrack(e) {}", memory_mib=160))
    pid = result.worker_pid
    assert proc_limit(pid, "Max open files") == ("100", "100")
    assert proc_limit(pid, "Max core file size") == ("0", "0")
    cmdline = proc_file(pid, "cmdline").split(b"\0")
    assert b"--permission" in cmdline and b"--disallow-code-generation-from-strings" in cmdline
    environ = proc_file(pid, "environ").split(b"\0")
    assert not [e for e in environ if e.startswith((b"NODE_OPTIONS=", b"NODE_EXTRA_CA_CERTS="))]
    if pool.host.memory is not None:
        cgroups = proc_file(pid, "cgroup").decode()
        assert pool.host.memory.base.name in cgroups
        (worker,) = [w for w in pool.supervisor.workers if w.pid == pid]
        limit_file = "memory.max" if pool.host.memory.version == 2 else "memory.limit_in_bytes"
        assert read(worker.cgroup.dirs["memory"] / limit_file) == str(160 << 20)
    else:
        assert proc_limit(pid, "Max address space")[0] != "unlimited"
    if pool.host.pids is not None:
        (worker,) = [w for w in pool.supervisor.workers if w.pid == pid]
        assert read(worker.cgroup.dirs["pids"] / "pids.max") == "24"


@pytest.mark.parametrize("warm", [0, 2], ids=["spawned", "warm-pool"])
async def test_young_generation_follows_the_memory_limit(
    pool_factory: PoolFactory, warm: int
) -> None:
    # 8 MiB semi-spaces from 128 MiB of function memory, 2 MiB below (process.semi_space_mib);
    # a warm worker (started for the platform's 256 MiB) serves only the first kind.
    pool = await pool_factory(fixture_settings(warm_workers=warm))
    flags = {}
    for memory in (64, 127, 128, 256):
        result = await invoke(
            pool, spec("function onTrack(e) {}", key=f"fn{memory}/1", memory_mib=memory)
        )
        cmdline = proc_file(result.worker_pid, "cmdline").split(b"\0")
        (flags[memory],) = [a for a in cmdline if a.startswith(b"--max-semi-space-size=")]
    assert flags == {
        64: b"--max-semi-space-size=2",
        127: b"--max-semi-space-size=2",
        128: b"--max-semi-space-size=8",
        256: b"--max-semi-space-size=8",
    }


async def test_memory_limit_is_clamped(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(max_memory_mib=200))
    if pool.host.memory is None or pool.host.memory.version != 1:
        pytest.skip("checks the v1 memory cgroup")
    result = await invoke(pool, spec("function onTrack(e) {}", memory_mib=4096))
    (worker,) = [w for w in pool.supervisor.workers if w.pid == result.worker_pid]
    limit = read(worker.cgroup.dirs["memory"] / "memory.limit_in_bytes")
    assert int(limit) == 200 << 20


async def test_close_drains_in_flight_calls(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(warm_workers=1))
    fn = spec(SLOW)
    calls = [asyncio.create_task(invoke(pool, fn, track(ms=300))) for _ in range(5)]
    await eventually(lambda: pool.stats().in_flight == 5)
    pids = {w.pid for w in pool.supervisor.workers}
    await pool.close()
    assert [(await c).outcome for c in calls] == [Outcome.OK] * 5
    with pytest.raises(ExecutorClosed):
        await invoke(pool, fn)
    with pytest.raises(ExecutorClosed):
        await pool.check_syntax("1")
    assert not [p for p in pids if pid_alive(p)]
    assert pool.stats().workers_total == 0
    for c in (pool.host.memory, pool.host.pids):
        if c is not None:
            assert not c.base.exists(), "the pool's cgroups are removed"


async def test_close_kills_what_outlives_the_grace(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings())
    call = asyncio.create_task(invoke(pool, spec(SLOW, timeout_s=30), track(ms=20000)))
    await eventually(lambda: pool.stats().in_flight == 1)
    await pool.close(grace_s=0.1)
    with pytest.raises(ExecutorClosed) as info:
        await call
    assert info.value.retryable


async def test_idle_workers_are_evicted(pool_factory: PoolFactory) -> None:
    settings = fixture_settings(
        warm_workers=1, idle_evict_s=0.2, maintenance_interval_s=0.05, liveness_interval_s=0.05
    )
    pool = await pool_factory(settings)
    result = await invoke(pool, spec("function onTrack(e) {}"))
    # Pings (liveness) do not count as use: the worker is still idle.
    await eventually(lambda: not pid_alive(result.worker_pid))
    await eventually(lambda: pool.stats().kills.get("idle") == 1)
    stats = pool.stats()
    assert stats.by_key == {} and stats.workers_warm == 1, "warm workers are kept"
    again = await invoke(pool, spec("function onTrack(e) {}"))
    assert again.outcome is Outcome.OK


async def test_memory_budget_evicts_least_recently_used(pool_factory: PoolFactory) -> None:
    settings = fixture_settings(memory_budget_mib=16, maintenance_interval_s=0.05)
    pool = await pool_factory(settings)
    first = await invoke(pool, spec("function onTrack(e) {}", key="a/1"))
    second = await invoke(pool, spec("function onTrack(e) {}", key="b/1"))
    # An idle node worker uses ~10 MiB of its own: two are over the budget, one is not.
    await eventually(lambda: not pid_alive(first.worker_pid))
    await eventually(lambda: pool.stats().kills == {"memory_budget": 1})
    assert pid_alive(second.worker_pid)


async def test_full_pool_makes_room_from_the_lru_idle_worker(pool_factory: PoolFactory) -> None:
    pool = await pool_factory(fixture_settings(max_workers=2))
    a = await invoke(pool, spec("function onTrack(e) {}", key="a/1"))
    b = await invoke(pool, spec("function onTrack(e) {}", key="b/1"))
    await invoke(pool, spec("function onTrack(e) {}", key="a/1"))  # b is now the LRU
    c = await invoke(pool, spec("function onTrack(e) {}", key="c/1"))
    assert c.outcome is Outcome.OK
    await eventually(lambda: not pid_alive(b.worker_pid))
    assert pid_alive(a.worker_pid)
    assert pool.stats().kills == {"lru": 1}


async def test_start_reports_what_the_host_allows(pool_factory: PoolFactory) -> None:
    pool: WorkerPool = await pool_factory(fixture_settings(use_cgroups="off"))
    assert pool.host.memory is None and pool.host.pids is None
    result = await invoke(pool, spec("function onTrack(e) {}"))
    # Without a memory cgroup, address space is capped instead.
    assert proc_limit(result.worker_pid, "Max address space")[0] == str(2048 << 20)
    assert pool.stats().host_limits["memory"] == "unavailable"
