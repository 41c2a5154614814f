"""Where a scenario's CPU goes, per process and thread: ``python -m bench.threads e2e``.

Starts servers like the bench does, drives one scenario's load from the load-generator
processes and reads every thread's CPU time from ``/proc`` before and after the timed window,
then prints CPU per webhook (``e2e``) or per call (``unary``: the bare echo, the echo with one
worker round trip and fnbox, one after the other) for each thread above a floor. ``main`` is a
process's first thread (its event loop); Python's other threads carry the process's name (the
SQLite bus thread of the pipeline is its busiest one under e2e). Unlike py-spy this needs no
extra package and counts native threads (grpc's, Node's) too; the README's per-thread figures
come from it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fnbox.functions.v1 import invocation_pb2

from bench.fnbox_api import INVOKE_METHOD, FnboxServer
from bench.loadgen import HttpSpec, LoadGenerator, LoadSpec, Spec
from bench.payloads import EVENT, WEBHOOK
from bench.procs import command_line, descendants
from bench.run import OUT_DIR, POOL_SETTINGS
from bench.scenarios import unary
from bench.scenarios.e2e import _setup as setup_e2e
from bench.scenarios.e2e import _wait_for_sink
from bench.servers import EchoServer, RelayFloor, SinkServer

_TICKS = os.sysconf("SC_CLK_TCK")
ThreadKey = tuple[str, str]  # (process label, thread label)


def _process_label(pid: int) -> str:
    argv = " ".join(command_line(pid))
    if "node" in argv.split(" ")[0]:
        return "node"
    if "fnbox.gateway.child" in argv:
        return "pipeline"
    if "bench.relay_floor" in argv:
        return "relay"
    if "bench.pool_floor" in argv:
        return "pool"
    return "server"


def thread_cpu(root: int) -> dict[ThreadKey, float]:
    """CPU seconds of every thread of ``root`` and its descendants, by (process, thread)."""
    seconds: dict[ThreadKey, float] = {}
    for pid in [root, *descendants(root)]:
        try:
            label = _process_label(pid)
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # gone meanwhile
        for tid in tids:
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            thread = "main" if int(tid) == pid else name
            key = (label, thread)
            seconds[key] = seconds.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return seconds


def _report(
    title: str, before: dict[ThreadKey, float], after: dict[ThreadKey, float], n: int
) -> None:
    per_unit = {key: (after[key] - before.get(key, 0.0)) / n * 1e6 for key in after}
    total = sum(per_unit.values())
    print(f"{title}: {total:.0f} µs of CPU per unit in all")
    for (process, thread), us in sorted(per_unit.items(), key=lambda item: -item[1]):
        if us >= 3:
            print(f"  {process:9} {thread:16} {us:8.1f} µs")


def _measure(
    loadgen: LoadGenerator, spec: Spec, root: int
) -> tuple[dict[ThreadKey, float], dict[ThreadKey, float], int, str]:
    before = thread_cpu(root)
    result = loadgen.run(spec, server_pid=root)
    after = thread_cpu(root)
    summary = (
        f"{result.rps:.0f}/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"load generator {result.loadgen_cores:.2f} cores"
    )
    return before, after, max(result.ok_total, 1), summary


@contextmanager
def _fnbox() -> Iterator[FnboxServer]:
    with FnboxServer(dict(os.environ), POOL_SETTINGS, OUT_DIR / "fnbox-threads.log") as server:
        yield server


def e2e(loadgen: LoadGenerator, seconds: float, concurrency: int) -> None:
    """fnbox, then the e2e shape floor (the relay with the functions over a bare gRPC stream):
    the same per-thread split of both says where fnbox's own layers cost."""
    with _fnbox() as fnbox, SinkServer() as sink:
        url = setup_e2e(fnbox, sink)
        _e2e_once("fnbox", loadgen, sink, url, fnbox.pid, seconds, concurrency)
        with RelayFloor(f"{sink.url}/events", functions=True, over_grpc=True) as floor:
            label = "shape floor (relay + functions over gRPC)"
            _e2e_once(label, loadgen, sink, floor.url, floor.pid, seconds, concurrency)


def _e2e_once(
    label: str,
    loadgen: LoadGenerator,
    sink: SinkServer,
    url: str,
    root: int,
    seconds: float,
    concurrency: int,
) -> None:
    loadgen.run(HttpSpec(url, WEBHOOK, concurrency, duration_s=2.0, warmup_s=0.2))  # warm
    _wait_for_sink(sink, 1, timeout_s=30)
    time.sleep(2.0)  # the warm-up's backlog drains
    start = sink.count()
    spec = HttpSpec(url, WEBHOOK, concurrency, duration_s=seconds, warmup_s=0.0)
    before = thread_cpu(root)
    result = loadgen.run(spec, server_pid=root)
    # CPU counts until the sink has every acknowledged webhook (the backlog's drain).
    _wait_for_sink(sink, start + result.ok_total, timeout_s=120)
    after = thread_cpu(root)
    print(
        f"{label}, e2e, {concurrency} senders: {result.rps:.0f} acks/s, ack p50"
        f" {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, load generator"
        f" {result.loadgen_cores:.2f} cores"
    )
    _report("per webhook", before, after, max(result.ok_total, 1))


def unary_calls(loadgen: LoadGenerator, seconds: float, concurrency: int) -> None:
    echo_request = invocation_pb2.InvokeFunctionRequest(target="x", event=EVENT)
    for label in ("gRPC echo", "echo + worker"):
        with EchoServer(executor=label != "gRPC echo") as server:
            spec = LoadSpec(
                server.target,
                INVOKE_METHOD,
                echo_request.SerializeToString(),
                concurrency,
                seconds,
                warmup_s=0.5,
            )
            before, after, n, summary = _measure(loadgen, spec, server.pid)
            print(f"{label}, {concurrency} callers: {summary}")
            _report("per call", before, after, n)
    with _fnbox() as fnbox:
        request = unary.prepare_fnbox(fnbox)
        spec = LoadSpec(
            fnbox.grpc_target,
            INVOKE_METHOD,
            request,
            concurrency,
            seconds,
            warmup_s=0.5,
            metadata=fnbox.api.metadata,
        )
        before, after, n, summary = _measure(loadgen, spec, fnbox.pid)
        print(f"fnbox, {concurrency} callers: {summary}")
        _report("per call", before, after, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["e2e", "unary"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=None, help="e2e 16, unary 32")
    args = parser.parse_args()
    with LoadGenerator(2) as loadgen:
        if args.scenario == "e2e":
            e2e(loadgen, args.seconds, args.concurrency or 16)
        else:
            unary_calls(loadgen, args.seconds, args.concurrency or 32)


if __name__ == "__main__":
    main()
