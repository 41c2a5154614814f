"""cold start: first invocation of a newly deployed function (warm pool / no pool) vs a Node
process spawned per invocation."""

from __future__ import annotations

import time

from fnbox.functions.v1 import invocation_pb2

from bench.fnbox_api import FnboxServer
from bench.node_baselines import spawn_per_call_ms
from bench.payloads import EVENT, TRIVIAL_DESTINATION
from bench.procs import node_descendants, tree_cpu_seconds
from bench.scenarios.common import Section
from bench.stats import percentile, rounded


def _wait_for_workers(server_pid: int, at_least: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(node_descendants(server_pid)) >= at_least:
            return True
        time.sleep(0.02)
    return False


def wait_until_idle(root_pid: int, timeout_s: float = 5.0) -> bool:
    """Wait until the server's process tree uses (almost) no CPU: warm workers that were just
    spawned have finished starting and nothing competes with the next measurement."""
    deadline = time.monotonic() + timeout_s
    before = tree_cpu_seconds(root_pid)
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = tree_cpu_seconds(root_pid)
        if now - before < 0.005:  # under 10% of one core over the interval
            return True
        before = now
    return False


def first_invocation_ms(fnbox: FnboxServer, label: str) -> float:
    """Deploy a new function (unique code) and time its first invocation, in ms."""
    code = f"// {label}\n{TRIVIAL_DESTINATION}"
    name = fnbox.api.create_function(label, code)
    request = invocation_pb2.InvokeFunctionRequest(target=name, event=EVENT)
    started = time.perf_counter()
    result = fnbox.api.invoke(request)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    if result.outcome != invocation_pb2.OUTCOME_OK:
        raise RuntimeError(f"first invocation of {name} answered {result}")
    return elapsed_ms


def run(
    fnbox: FnboxServer, mode: str, count: int, warm_workers: int
) -> tuple[Section, list[float]]:
    """Time ``count`` first invocations; a spawn-per-call baseline run follows each one.

    With a warm pool, each iteration first waits (not timed) until the pool has refilled:
    every earlier iteration left one specialised worker behind, plus ``warm_workers``. Every
    iteration starts with the server's process tree idle.
    """
    samples: list[float] = []
    spawn_samples: list[float] = []
    not_refilled = 0
    base = len(node_descendants(fnbox.pid))
    if warm_workers:
        _wait_for_workers(fnbox.pid, warm_workers, timeout_s=10)
        wait_until_idle(fnbox.pid)
        base = len(node_descendants(fnbox.pid))
    for index in range(count):
        if warm_workers and not _wait_for_workers(fnbox.pid, base + index, timeout_s=5):
            not_refilled += 1
        wait_until_idle(fnbox.pid)
        samples.append(first_invocation_ms(fnbox, f"bench-cold-{mode}-{index}"))
        spawn_samples.append(spawn_per_call_ms(EVENT))
    section: Section = {
        "p50_ms": rounded(percentile(samples, 50)),
        "p99_ms": rounded(percentile(samples, 99)),
        "samples": len(samples),
        "samples_ms": [rounded(value, 2) for value in samples],
    }
    if warm_workers:
        section["pool_not_refilled"] = not_refilled
    return section, spawn_samples
