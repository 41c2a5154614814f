"""batch: InvokeFunction with ``events`` (a JSON array of 1, 20, 200 events) vs the in-Node loop."""

from __future__ import annotations

from fnbox.functions.v1 import invocation_pb2

from bench.config import BenchConfig
from bench.fnbox_api import INVOKE_METHOD, FnboxServer
from bench.loadgen import LoadGenerator, LoadResult, LoadSpec
from bench.node_baselines import node_loop_events_per_s
from bench.payloads import EVENT, TRIVIAL_DESTINATION, event_batch
from bench.scenarios.common import Section, summarise_load
from bench.stats import median, rounded

SIZES = (1, 20, 200)


def _prepare(fnbox: FnboxServer) -> tuple[dict[int, bytes], dict[int, int]]:
    """The request bytes per batch size, and how many per-event statuses each answer had."""
    name = fnbox.api.create_function("bench-batch", TRIVIAL_DESTINATION)
    requests: dict[int, bytes] = {}
    statuses: dict[int, int] = {}
    for size in SIZES:
        request = invocation_pb2.InvokeFunctionRequest(target=name, events=event_batch(size))
        result = fnbox.api.invoke(request)
        if result.outcome != invocation_pb2.OUTCOME_OK:
            raise RuntimeError(f"batch of {size} answered {result}")
        bad = [s for s in result.batch_statuses if s.outcome != invocation_pb2.OUTCOME_OK]
        if bad:
            raise RuntimeError(f"batch of {size}: {len(bad)} events failed: {bad[0]}")
        requests[size] = bytes(request.SerializeToString())
        statuses[size] = len(result.batch_statuses)
    return requests, statuses


def run(
    config: BenchConfig, loadgen: LoadGenerator, fnbox: FnboxServer | None
) -> tuple[Section, Section]:
    """Returns (the ``batch`` section or {}, the in-Node loop's events/s per size)."""
    requests, statuses = _prepare(fnbox) if fnbox else ({}, {})
    fnbox_runs: dict[int, list[LoadResult]] = {size: [] for size in SIZES}
    loop_runs: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(config.repeats):
        for size in SIZES:
            loop_s = min(config.duration_s / 2, 0.5)
            loop_runs[size].append(node_loop_events_per_s(EVENT, size, loop_s))
            if fnbox:
                spec = LoadSpec(
                    target=fnbox.grpc_target,
                    method=INVOKE_METHOD,
                    request=requests[size],
                    concurrency=config.batch_concurrency,
                    duration_s=config.duration_s,
                    warmup_s=config.warmup_s,
                    metadata=fnbox.api.metadata,
                )
                fnbox_runs[size].append(loadgen.run(spec, server_pid=fnbox.pid))
    loop = {f"b{size}": rounded(median(runs), 0) for size, runs in loop_runs.items()}
    if not fnbox:
        return {}, loop
    batch: Section = {}
    for size, runs in fnbox_runs.items():
        calls = summarise_load(runs)
        per_event = [
            run.server_cpu_s / (run.calls * size) * 1e6
            for run in runs
            if run.server_cpu_s is not None and run.calls
        ]
        batch[f"b{size}"] = {
            "events_per_s": rounded(median([run.rps * size for run in runs]), 0),
            "calls_per_s": calls["rps"],
            "call_p50_ms": calls["p50_ms"],
            "call_p99_ms": calls["p99_ms"],
            "errors": calls["errors"],
            "first_error": calls["first_error"],
            "loadgen_cores": calls["loadgen_cores"],
            "server_cores": calls["server_cores"],
            "server_cpu_us_per_event": rounded(median(per_event), 2) if per_event else None,
            "statuses_per_answer": statuses[size],
        }
    return batch, loop
