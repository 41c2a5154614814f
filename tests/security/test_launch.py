"""How workers are launched, read back from the kernel (/proc and the cgroup files) of the
real worker processes: permission model and flags, a minimal explicit environment, own
session, rlimits, memory and pids cgroups; and those cgroups gone once a worker dies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from pathlib import Path

import grpc
import pytest
from fnbox.executor.limits import WorkerCgroup, detect_host_limits, limit_wrapper
from fnbox.executor.settings import default_node_path

from tests.security.helpers import Server, error_reason, eventually, outcome, worker_netns

pytestmark = pytest.mark.asyncio(loop_scope="session")
MIB = 1024 * 1024
LOOP_ON_DEMAND = """
async function onTrack(e) { if (e.properties.loop) for (;;) {} console.log('up'); }
// launch probe
"""


def cgroup_dirs(pid: int) -> dict[str, Path]:
    """controller → the cgroup folder of ``pid`` (v1 controllers and the v2 hierarchy)."""
    dirs: dict[str, Path] = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in ("memory", "pids"):
            if name in controllers.split(","):
                dirs[name] = Path("/sys/fs/cgroup") / name / path.lstrip("/")
    return dirs


def limit(pid: int, name: str) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            soft, hard = line[len(name) :].split()[:2]
            return soft, hard
    raise AssertionError(f"no {name} in /proc/{pid}/limits")


def check_launch(pid: int, heap_mib: int, nofile: int) -> None:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--permission" in argv
    assert b"--disallow-code-generation-from-strings" in argv
    assert f"--max-old-space-size={heap_mib}".encode() in argv
    granted = (b"--allow-child", b"--allow-worker", b"--allow-addons", b"--allow-fs-write")
    assert not [a for a in argv if a.startswith(granted)]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(item.split(b"=", 1) for item in environ if item)
    # PWD is the shell's (the limit wrapper's) own; nothing comes from the service's env.
    assert set(env) <= {b"PATH", b"LANG", b"TZ", b"PWD"}, env.keys()
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(stat[2]) == pid  # its own process group...
    assert int(stat[3]) == pid  # ...and session
    assert limit(pid, "Max open files") == (str(nofile), str(nofile))
    assert limit(pid, "Max core file size") == ("0", "0")


def _node_binary() -> str:
    return os.path.realpath(default_node_path())


def _is_node(pid: int, node: str) -> bool:
    try:
        return os.path.realpath(f"/proc/{pid}/exe") == node
    except OSError:
        return False


async def test_worker_launch_as_the_kernel_sees_it(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Secrets and NODE_OPTIONS in the service's own environment must not reach any worker.
    monkeypatch.setenv("NODE_OPTIONS", "--require=/nonexistent/evil.js")
    monkeypatch.setenv("FNBOX_TEST_SECRET_TOKEN", "s3cr3t")
    before = set(worker_netns())
    # 160 MiB marks this function's worker; no_network forces a fresh spawn after setenv.
    result = await server.attack(
        server.run(LOOP_ON_DEMAND, memory_mib=160, no_network=True, timeout_ms=1000)
    )
    assert list(result.logs) == ["up"]
    host = server.service.pool.host
    fresh = set(worker_netns()) - before
    assert fresh, "no new worker was started"
    settings = server.service.settings.executor
    node = _node_binary()
    for pid in fresh:
        # A warm-pool refill may still be its limit wrapper (/bin/sh, worker.js in its argv,
        # rlimits not yet set): the launch is checked once it is node, same pid.
        await eventually(functools.partial(_is_node, pid, node))
        check_launch(pid, settings.heap_mib, settings.nofile)
    # This function's worker: its own memory (160 MiB) and pids cgroups.
    if host.memory is None or host.pids is None:
        pytest.skip(f"cgroups unavailable here: {host.summary()}")
    mine = [
        pid
        for pid in fresh
        if int((cgroup_dirs(pid)["memory"] / "memory.limit_in_bytes").read_text()) == 160 * MIB
    ]
    assert len(mine) == 1, fresh
    dirs = cgroup_dirs(mine[0])
    assert dirs["memory"].parent == host.memory.base
    assert dirs["pids"].parent == host.pids.base
    assert (dirs["pids"] / "pids.max").read_text().strip() == str(settings.pids_max)
    # Killed on its deadline: its cgroups are removed once it is reaped.
    looped = await server.run(
        LOOP_ON_DEMAND,
        event=b'{"type":"track","event":"e","properties":{"loop":true}}',
        memory_mib=160,
        no_network=True,
        timeout_ms=500,
    )
    assert outcome(looped) == "TIMEOUT"
    await eventually(lambda: not any(d.exists() for d in dirs.values()))


async def test_cgroups_left_by_a_killed_service_are_swept(server: Server) -> None:
    host = server.service.pool.host
    if host.pids is None:
        pytest.skip("no pids cgroup here")
    gone = await asyncio.create_subprocess_exec("/bin/true")
    await gone.wait()  # a pid nobody runs now: the "owner" of the stale cgroup
    stale = host.pids.base.parent / f"fnbox-{gone.pid}-dead00"
    (stale / "w1").mkdir(parents=True)
    (stale / "w2").mkdir()
    live = host.pids.base.parent / f"fnbox-{os.getpid()}-live00"
    live.mkdir()
    try:
        # What a starting pool does first (probe cgroups are created and removed again).
        detected = await server.attack(asyncio.to_thread(detect_host_limits, "auto", "off"))
        assert not stale.exists()
        assert live.exists()  # its owner (this process) is alive: left alone
        detected.remove()
    finally:
        live.rmdir()
        for path in (stale / "w1", stale / "w2", stale):
            if path.exists():
                path.rmdir()


async def test_pids_cgroup_bounds_a_fork_bomb_even_without_the_permission_model(
    server: Server,
) -> None:
    # Below the permission model: a node with child processes allowed, in a worker's pids
    # cgroup (as the executor makes it), tries to start 60 sleepers.
    host = server.service.pool.host
    if host.pids is None:
        pytest.skip("no pids cgroup here")
    cgroup = WorkerCgroup(host, "forkbomb-probe")
    cgroup.create(memory_mib=256, pids_max=24)
    script = (
        "const cp = require('child_process'); let ok = 0, failed = 0;"
        "for (let i = 0; i < 60; i++) { try { cp.spawn('/bin/sleep', ['5']).on('error', () => {});"
        " ok++; } catch (e) { failed++; } }"
        "setTimeout(() => { console.log(JSON.stringify({ok, failed})); process.exit(0); }, 500);"
    )
    wrapper = limit_wrapper(procs_files=cgroup.procs_files, nofile=128, address_space_mib=None)
    proc = await asyncio.create_subprocess_exec(
        *wrapper,
        str(default_node_path()),
        "-e",
        script,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
        start_new_session=True,
    )
    try:
        out, _ = await server.attack(proc.communicate())
        pids_dir = cgroup.dirs["pids"]
        events = (pids_dir / "pids.events").read_text().strip()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await eventually(lambda: not (cgroup.dirs["pids"] / "cgroup.procs").read_text().strip())
        cgroup.remove()
    # Forks beyond pids.max failed (EAGAIN), and the kernel counted them.
    assert events.startswith("max "), events
    assert int(events.split()[1]) > 0, (events, out)


async def test_without_cgroups_address_space_still_caps_off_heap_memory(
    server: Server, tmp_path: Path
) -> None:
    # A host without cgroups (here: switched off): RLIMIT_AS is the fallback. A Buffer bomb
    # then fails inside the worker instead of growing without bound.
    before = set(worker_netns())
    bare = await Server.start(
        tmp_path, warm_workers=1, use_cgroups="off", rlimit_as_mib=1400, kill_grace_s=0.2
    )
    try:
        code = (
            "async function onTrack(e) {"
            " const keep = []; for (;;) keep.push(new Uint8Array(64 << 20).fill(3)); }"
        )
        async with server.benign_traffic():
            try:
                result = await bare.run(code, timeout_ms=5000)
                assert outcome(result) == "ERROR", result
                assert result.error.name == "RangeError"
            except grpc.aio.AioRpcError as error:  # or the worker died of it
                assert error_reason(error) == "WORKER_CRASHED", error.details()
        checked = 0
        for pid in set(worker_netns()) - before:
            soft, hard = limit(pid, "Max address space")
            if soft != "unlimited":  # the other server's refills have cgroups instead
                assert soft == hard == str(1400 * MIB)
                checked += 1
        assert checked >= 1
    finally:
        await bare.stop()
