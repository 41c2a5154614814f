"""e2e: webhooks POSTed to the gateway, through the source function, the bus and delivery, to a
destination function whose fetch() reaches an HTTP sink. Embedded backend (SQLite bus).

Figures: ``events_per_s`` is the sustained end-to-end rate: the webhooks the gateway accepted
in a run divided by the time from the run's start until the sink had received them all (the
gateway may accept faster than the pipeline delivers; the backlog's drain counts). Ack latency
is the gateway's HTTP answer (202 once durable), under closed-loop load.

Baselines, run interleaved with fnbox (each repeat: the floors, then fnbox), from
``bench.relay_floor``: a bare durable relay in one Python process (aiohttp's low-level server, a
grouped fsync'd SQLite write, read back, POST to the same sink, delete); the same relay through
the same two functions on Node workers of fnbox's pool in that process; and the same again with
the pool in a child process behind a bare gRPC stream (``bench.pool_floor``), the shape of
fnbox's pipeline → control hop without fnbox's layers.
"""

from __future__ import annotations

import time

import orjson
from fnbox.functions.v1 import resources_pb2, service_pb2

from bench.config import BenchConfig
from bench.fnbox_api import FnboxServer
from bench.loadgen import HttpSpec, LoadGenerator, LoadResult
from bench.payloads import E2E_DESTINATION as DESTINATION
from bench.payloads import E2E_SOURCE as SOURCE
from bench.payloads import WEBHOOK
from bench.procs import tree_cpu_seconds
from bench.scenarios.common import Section
from bench.servers import RelayFloor, SinkServer
from bench.stats import median, rounded
from bench.targets import E2E_FLOORS


def _setup(fnbox: FnboxServer, sink: SinkServer) -> str:
    """Source → destination pipeline; returns the webhook URL."""
    api = fnbox.api
    source_fn = api.create_function("bench-e2e-source", SOURCE, resources_pb2.FUNCTION_TYPE_SOURCE)
    dest_function = resources_pb2.Function(
        display_name="bench-e2e-destination",
        type=resources_pb2.FUNCTION_TYPE_DESTINATION,
        code=DESTINATION,
        settings_schema=[
            resources_pb2.SettingDefinition(
                name="url", label="Sink URL", type=resources_pb2.SETTING_TYPE_STRING, required=True
            )
        ],
    )
    created = api.functions.CreateFunction(
        service_pb2.CreateFunctionRequest(function=dest_function), metadata=api.metadata, timeout=30
    )
    api.functions.DeployFunction(
        service_pb2.DeployFunctionRequest(name=created.name), metadata=api.metadata, timeout=30
    )
    source = api.create_instance(source_fn, "bench-e2e-source")
    api.create_instance(
        created.name,
        "bench-e2e-destination",
        settings=orjson.dumps({"url": f"{sink.url}/events"}),
        sources=[source.name],
        enabled=True,
    )
    return f"{fnbox.http_base}/v1/sources/{source.id}"


def _wait_for_sink(sink: SinkServer, at_least: int, timeout_s: float) -> float | None:
    """Seconds until the sink has seen ``at_least`` requests, None if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if sink.count() >= at_least:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


class _Runs:
    """The figures of one system's runs (fnbox or the floor), as :func:`run` reports them."""

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.loads: list[LoadResult] = []
        self.sustained: list[float] = []
        self.during_load: list[float] = []
        self.drains: list[float] = []
        self.cpu_per_webhook: list[float] = []
        self.lost = 0

    def once(self, config: BenchConfig, loadgen: LoadGenerator, sink: SinkServer) -> None:
        before = sink.count()
        spec = HttpSpec(
            self.url,
            WEBHOOK,
            config.e2e_concurrency,
            duration_s=config.e2e_duration_s,
            warmup_s=config.warmup_s,
        )
        started = time.monotonic()
        cpu_before = tree_cpu_seconds(self.pid)
        result = loadgen.run(spec, server_pid=self.pid, probes={"sink": sink.count})
        self.loads.append(result)
        self.during_load.append(result.probes["sink"] / spec.duration_s)
        # The run ends when the sink has everything (runs never overlap).
        drain = _wait_for_sink(sink, before + result.ok_total, timeout_s=120)
        if drain is None:
            self.lost += before + result.ok_total - sink.count()
            return
        self.drains.append(drain)
        self.sustained.append(result.ok_total / (time.monotonic() - started))
        self.cpu_per_webhook.append(
            (tree_cpu_seconds(self.pid) - cpu_before) / result.ok_total * 1e3
        )

    def section(self, concurrency: int) -> Section:
        runs = self.loads
        return {
            "events_per_s": rounded(median(self.sustained), 1),
            "sink_per_s_during_load": rounded(median(self.during_load), 1),
            "ack_p50_ms": rounded(median([run.p50_ms for run in runs])),
            "ack_p99_ms": rounded(median([run.p99_ms for run in runs])),
            "acks_per_s": rounded(median([run.rps for run in runs]), 1),
            "errors": sum(run.errors for run in runs),
            "first_error": next((run.first_error for run in runs if run.first_error), ""),
            "drain_after_load_s": rounded(median(self.drains), 2),
            "runs": len(runs),
            "undelivered": self.lost,
            "concurrency": concurrency,
            "loadgen_cores": rounded(median([run.loadgen_cores for run in runs]), 2),
            "server_cores": rounded(median([run.server_cores or 0.0 for run in runs]), 2),
            # CPU of the server's process tree (fnbox: gateway, bus, control, delivery, workers)
            # from the start of a run until the sink had everything, per webhook.
            "server_cpu_ms_per_webhook": rounded(median(self.cpu_per_webhook), 2),
        }


def run(
    config: BenchConfig, loadgen: LoadGenerator, fnbox: FnboxServer | None
) -> tuple[Section, dict[str, Section]]:
    """Closed-loop webhook load at the gateway; the sink counts what came out the other end.
    Each repeat runs the three floors of ``bench.relay_floor`` (the bare relay, with the
    functions, with the functions over a bare gRPC stream), then fnbox; returns fnbox's
    section (empty without ``fnbox``) and the floors' by their names in
    :data:`bench.targets.E2E_FLOORS`."""
    with SinkServer() as sink:
        url = None
        if fnbox is not None:
            url = _setup(fnbox, sink)
            # One webhook through the whole pipeline first: it proves the path works.
            first = loadgen.run(HttpSpec(url, WEBHOOK, 1, duration_s=0.05, warmup_s=0.0))
            if not first.ok_total or _wait_for_sink(sink, 1, timeout_s=30) is None:
                raise RuntimeError(f"no webhook reached the sink ({first.first_error})")
        events = f"{sink.url}/events"
        with (
            RelayFloor(events) as relay,
            RelayFloor(events, functions=True) as relay_functions,
            RelayFloor(events, functions=True, over_grpc=True) as relay_grpc,
        ):
            floors = [_Runs(floor.url, floor.pid) for floor in (relay, relay_functions, relay_grpc)]
            systems = list(floors)
            if fnbox is not None and url is not None:
                systems.append(_Runs(url, fnbox.pid))
            for _ in range(config.e2e_repeats):
                for system in systems:
                    system.once(config, loadgen, sink)
    fnbox_section = systems[-1].section(config.e2e_concurrency) if fnbox is not None else {}
    sections = {
        name: runs.section(config.e2e_concurrency)
        for (name, _), runs in zip(E2E_FLOORS, floors, strict=True)
    }
    return fnbox_section, sections
