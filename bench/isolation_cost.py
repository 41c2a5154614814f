"""What each isolation layer of a worker costs: spawn (until its hello frame), first call
(load + first invoke) and per call (sequential invokes of a trivial function).

Separate from ``make bench``: ``.venv/bin/python -m bench.isolation_cost [--runs N]``.
Variants are the full launch the executor uses, then the same without one layer at a time
(permission model, code-generation flag, cgroups, rlimits, network namespace), and a bare
``node worker.js``; runs are interleaved (in a random order each round) so that background
load hits every variant alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field

from fnbox.executor.codec import PREFIX_SIZE, Frame, decode_rest, encode_frame, rest_length
from fnbox.executor.limits import HostLimits, WorkerCgroup, detect_host_limits, limit_wrapper
from fnbox.executor.messages import invoke_segments, load_frame
from fnbox.executor.policy import function_limits
from fnbox.executor.process import worker_command, worker_env
from fnbox.executor.settings import JS_DIR, ExecutorSettings
from fnbox.executor.types import FunctionSpec, FunctionType, Invocation

CODE = "async function onTrack(event) { event.properties.seen = true; return event; }"
EVENT = b'{"type":"track","event":"Bench","userId":"u1","properties":{"n":1}}'
LAYERS = ("permission", "codegen", "cgroups", "rlimits", "netns")


@dataclass
class Variant:
    name: str
    without: frozenset[str]
    spawn_ms: list[float] = field(default_factory=list)
    spawn_cpu_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    call_us: list[float] = field(default_factory=list)


def argv_of(
    variant: Variant, settings: ExecutorSettings, host: HostLimits, cg: WorkerCgroup
) -> list[str]:
    node = worker_command(settings)
    if "permission" in variant.without:
        node = [a for a in node if not a.startswith(("--permission", "--allow-fs-read"))]
    if "codegen" in variant.without:
        node = [a for a in node if a != "--disallow-code-generation-from-strings"]
    procs = () if "cgroups" in variant.without else cg.procs_files
    if {"cgroups", "rlimits"} <= variant.without:
        prefix: list[str] = []  # nothing to apply: node is started directly
    elif "rlimits" in variant.without:
        # The same wrapper (a /bin/sh that joins the cgroups, then execs) without the ulimits.
        prefix = [
            "/bin/sh",
            "-c",
            'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"',
            "w",
            *procs,
            "--",
        ]
    else:
        prefix = limit_wrapper(procs_files=procs, nofile=settings.nofile, address_space_mib=None)
    netns = [] if "netns" in variant.without else host.netns_prefix()
    return [*prefix, *netns, *node]


def cpu_ms(pid: int) -> float:
    """CPU time of a process so far (wrapper and node: they exec in place, one pid)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


async def read_frame(reader: asyncio.StreamReader, max_bytes: int) -> Frame:
    prefix = await reader.readexactly(PREFIX_SIZE)
    return decode_rest(await reader.readexactly(rest_length(prefix, max_frame_bytes=max_bytes)))


async def measure(
    variant: Variant, settings: ExecutorSettings, host: HostLimits, calls: int
) -> None:
    mfb = settings.max_frame_bytes
    t0 = time.perf_counter()  # the executor makes a worker's cgroups just before its spawn
    cg = WorkerCgroup(host, f"bench-{variant.name}-{time.monotonic_ns()}")
    if "cgroups" not in variant.without:
        cg.create(memory_mib=settings.memory_mib, pids_max=settings.pids_max)
    proc = await asyncio.create_subprocess_exec(
        *argv_of(variant, settings, host, cg),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=worker_env(settings),
        cwd=str(JS_DIR),
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        hello = await read_frame(proc.stdout, mfb)
        assert hello.type == "hello", hello
        variant.spawn_ms.append((time.perf_counter() - t0) * 1000)
        variant.spawn_cpu_ms.append(cpu_ms(proc.pid))
        spec = FunctionSpec(key="bench", type=FunctionType.DESTINATION, code=CODE)
        header, segments = load_frame(spec, function_limits(spec, settings), settings)
        invoke = encode_frame(
            {"t": "invoke", "id": 2, "kind": "event", "trace": {}},
            invoke_segments(Invocation(kind="event", payload=EVENT)),
            max_frame_bytes=mfb,
        )
        t1 = time.perf_counter()
        proc.stdin.write(encode_frame({**header, "id": 1}, segments, max_frame_bytes=mfb) + invoke)
        ready, first = await read_frame(proc.stdout, mfb), await read_frame(proc.stdout, mfb)
        assert ready.type == "ready" and first.header.get("outcome") == "OK", (ready, first)
        variant.first_ms.append((time.perf_counter() - t1) * 1000)
        t2 = time.perf_counter()
        for _ in range(calls):
            proc.stdin.write(invoke)
            await read_frame(proc.stdout, mfb)
        variant.call_us.append((time.perf_counter() - t2) / calls * 1e6)
    finally:
        proc.kill()
        await proc.wait()
        for _ in range(50):
            if cg.remove():
                break
            await asyncio.sleep(0.01)


async def main(runs: int, calls: int) -> int:
    settings = ExecutorSettings()
    host = await asyncio.to_thread(detect_host_limits, "auto", "auto")
    print(f"host: {host.summary()}", file=sys.stderr)
    variants = [Variant("full", frozenset())]
    variants += [Variant(f"-{layer}", frozenset({layer})) for layer in LAYERS]
    variants.append(Variant("bare", frozenset(LAYERS)))
    try:
        for variant in variants:  # warm-up: page cache, first cgroup creations
            await measure(variant, settings, host, calls)
            variant.spawn_ms, variant.first_ms, variant.call_us = [], [], []
            variant.spawn_cpu_ms = []
        for _ in range(runs):
            for variant in random.sample(variants, len(variants)):  # no order bias
                await measure(variant, settings, host, calls)
    finally:
        host.remove()
    print(f"medians of {runs} interleaved runs; per call: {calls} sequential invokes")
    print(
        "| variant | spawn → hello ms (p25) | spawn CPU ms (mean) | first call (load + invoke) ms "
        "| per call µs |"
    )
    print("|---|---|---|---|---|")
    for v in variants:
        med = statistics.median
        p25 = statistics.quantiles(v.spawn_ms, n=4)[0]
        cpu = statistics.mean(v.spawn_cpu_ms)  # 10 ms ticks: a mean, not a median
        print(
            f"| {v.name} | {med(v.spawn_ms):.1f} ({p25:.1f}) | {cpu:.0f} "
            f"| {med(v.first_ms):.1f} | {med(v.call_us):.0f} |"
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.runs, args.calls)))
