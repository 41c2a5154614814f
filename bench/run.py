"""``make bench``: every scenario with its baseline, then results.json, a table and a chart.

``BENCH_QUICK=1`` shortens every run (the whole bench then takes well under 90 s).
``BENCH_ONLY=e2e,unary`` runs only the named scenarios (unary, batch, cold_start, e2e,
memory); the others are recorded as skipped.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.config import BenchConfig
from bench.fnbox_api import FnboxServer, fnbox_available
from bench.loadgen import LoadGenerator
from bench.machine import cpu_times, describe_machine, host_cpu_between, source_revision
from bench.node_baselines import spawn_per_call_ms
from bench.payloads import EVENT
from bench.report import format_table, write_chart, write_json
from bench.scenarios import batch, cold_start, e2e, memory, unary
from bench.servers import EchoServer
from bench.stats import percentile, rounded
from bench.targets import Results, compute_ratios, evaluate_targets

OUT_DIR = Path(__file__).resolve().parent / "out"
WARM_WORKERS = 2

# The pool server runs fnbox's defaults except: the warm pool is refilled every 0.1 s (so
# that cold-start iterations need not wait a full default period) and fetch() may reach the
# e2e sink on loopback.
POOL_SETTINGS = {
    "FNBOX_EXECUTOR__WARM_WORKERS": str(WARM_WORKERS),
    "FNBOX_EXECUTOR__MAINTENANCE_INTERVAL_S": "0.1",
    "FNBOX_EXECUTOR__EGRESS_ALLOW": '["127.0.0.1/32"]',
}
# No warm pool, and room for every function of the memory scenario to keep its worker.
NO_POOL_SETTINGS = {
    "FNBOX_EXECUTOR__WARM_WORKERS": "0",
    "FNBOX_EXECUTOR__MAX_WORKERS": "512",
}


class Bench:
    """Collects sections into one results dict; a failing scenario is recorded, not fatal."""

    def __init__(
        self,
        config: BenchConfig,
        base_env: dict[str, str],
        out_dir: Path,
        *,
        with_fnbox: bool = True,
        only: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config
        self.only = only
        self.with_fnbox = with_fnbox
        out_dir.mkdir(parents=True, exist_ok=True)
        self.base_env = base_env
        self.out_dir = out_dir
        self.failed = False
        self.results: Results = {
            "unary": {},
            "batch": {},
            "cold_start": {},
            "e2e": {},
            "memory": {},
            "baselines": {},
            "ratios": {},
            "targets": {},
            "machine": describe_machine(),
            "config": {
                "quick": config.quick,
                "duration_s": config.duration_s,
                "repeats": config.repeats,
                "loadgen_processes": config.loadgen_processes,
                "batch_concurrency": config.batch_concurrency,
                "cold_starts": config.cold_starts,
                "e2e_repeats": config.e2e_repeats,
                "e2e_concurrency": config.e2e_concurrency,
            },
            "source": source_revision(Path(__file__).resolve().parents[1]),
            "skipped": {},
            "timings_s": {},
            # The whole machine during each step: busy cores and the hypervisor's steal.
            "host_cpu": {},
        }
        self.spawn_samples: list[float] = []

    def attempt(self, name: str, step: Callable[[], None]) -> None:
        """Run one scenario step, recording its wall time and any failure."""
        if not self.selected(name):
            self.results["skipped"][name] = "not selected (BENCH_ONLY)"
            return
        started = time.monotonic()
        before = cpu_times()
        try:
            step()
        except Exception as exc:  # a broken scenario must not hide the others' figures
            self.failed = True
            self.results["skipped"][name] = f"failed: {exc!r}"
            traceback.print_exc()
        self.results["timings_s"][name] = round(time.monotonic() - started, 1)
        self.results["host_cpu"][name] = host_cpu_between(before, cpu_times())

    def selected(self, name: str) -> bool:
        """Whether ``BENCH_ONLY`` (empty: everything) includes scenario ``name``."""
        return not self.only or name.split(".")[0] in self.only

    def _start_or_skip(self, settings: dict[str, str], label: str) -> FnboxServer | None:
        """``fnbox serve`` with ``settings``; None (recorded as a failure) if it won't start."""
        log_path = self.out_dir / f"fnbox-{label}.log"
        try:
            return FnboxServer(self.base_env, settings, log_path)
        except Exception as exc:
            self.failed = True
            self.results["skipped"][f"fnbox serve ({label})"] = f"failed: {exc!r}; see {log_path}"
            return None

    def run(self) -> Results:
        """Measure everything; fnbox scenarios are skipped when fnbox cannot run."""
        unavailable = fnbox_available() if self.with_fnbox else "baselines only"
        if unavailable:
            for name in ("unary", "batch", "cold_start", "e2e", "memory"):
                self.results["skipped"][name] = unavailable
        cfg = self.config
        with LoadGenerator(cfg.loadgen_processes) as loadgen, EchoServer() as echo:
            fnbox = None if unavailable else self._start_or_skip(POOL_SETTINGS, "pool")
            floor = EchoServer(executor=True) if fnbox else None
            try:
                self.attempt("unary", lambda: self._unary(cfg, loadgen, echo, fnbox, floor))
                self.attempt("batch", lambda: self._batch(cfg, loadgen, fnbox))
                if fnbox:
                    self.attempt("cold_start.warm_pool", lambda: self._cold(fnbox, "warm_pool"))
                # Without fnbox, its baseline alone.
                self.attempt("e2e", lambda: self._e2e(cfg, loadgen, fnbox))
            finally:
                if floor:
                    floor.stop()
                if fnbox:
                    fnbox.stop()
        wanted = self.selected("cold_start") or self.selected("memory")
        bare = None
        if wanted and not unavailable:
            bare = self._start_or_skip(NO_POOL_SETTINGS, "nopool")
        if bare:
            with bare:
                self.attempt("cold_start.no_pool", lambda: self._cold(bare, "no_pool"))
                self.attempt("memory", lambda: self._memory(bare))
        if not self.spawn_samples and self.selected("cold_start"):
            self.spawn_samples = [spawn_per_call_ms(EVENT) for _ in range(cfg.cold_starts)]
        if self.spawn_samples:
            for q in (50, 99):
                self.results["baselines"][f"spawn_per_call_p{q}_ms"] = rounded(
                    percentile(self.spawn_samples, q)
                )
        self.results["ratios"] = compute_ratios(self.results)
        self.results["targets"] = evaluate_targets(self.results)
        return self.results

    def _unary(
        self,
        cfg: BenchConfig,
        loadgen: LoadGenerator,
        echo: EchoServer,
        fnbox: FnboxServer | None,
        floor: EchoServer | None,
    ) -> None:
        section, echo_section, floor_section = unary.run(cfg, loadgen, echo, fnbox, floor)
        self.results["unary"] = section
        baselines = self.results["baselines"]
        baselines["grpc_echo"] = echo_section
        if floor_section:
            baselines["grpc_worker_floor"] = floor_section
        baselines["grpc_echo_rps_c32"] = echo_section["c32"]["rps"]
        baselines["grpc_echo_p50_ms_c1"] = echo_section["c1"]["p50_ms"]

    def _batch(self, cfg: BenchConfig, loadgen: LoadGenerator, fnbox: FnboxServer | None) -> None:
        section, loop = batch.run(cfg, loadgen, fnbox)
        self.results["batch"] = section
        self.results["baselines"]["node_loop"] = loop
        self.results["baselines"]["node_loop_events_per_s"] = loop["b200"]

    def _cold(self, fnbox: FnboxServer, mode: str) -> None:
        warm = WARM_WORKERS if mode == "warm_pool" else 0
        section, spawns = cold_start.run(fnbox, mode, self.config.cold_starts, warm)
        self.results["cold_start"][mode] = section
        self.spawn_samples += spawns

    def _e2e(self, cfg: BenchConfig, loadgen: LoadGenerator, fnbox: FnboxServer | None) -> None:
        section, floors = e2e.run(cfg, loadgen, fnbox)
        if fnbox:
            self.results["e2e"] = section
        for name, floor in floors.items():
            self.results["baselines"][name] = floor
            self.results["baselines"][f"{name}_events_per_s"] = floor["events_per_s"]

    def _memory(self, fnbox: FnboxServer) -> None:
        self.results["memory"] = memory.run(fnbox, self.config.memory_functions)


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    config = BenchConfig.quick_run() if quick else BenchConfig.full()
    base_env = dict(os.environ)
    started = time.monotonic()
    only = frozenset(n.strip() for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip())
    unknown = only - {"unary", "batch", "cold_start", "e2e", "memory"}
    if unknown:
        sys.exit(f"BENCH_ONLY: unknown scenario(s) {', '.join(sorted(unknown))}")
    bench = Bench(config, base_env, OUT_DIR, only=only)
    results = bench.run()
    results["timings_s"]["total"] = round(time.monotonic() - started, 1)
    write_json(results, OUT_DIR / "results.json")
    write_chart(results, OUT_DIR / "chart.png")
    print(format_table(results))
    total = results["timings_s"]["total"]
    print(f"\nwrote {OUT_DIR / 'results.json'} and {OUT_DIR / 'chart.png'} in {total} s")
    if bench.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
