"""Keeps the benchmark harness from rotting: runs its baselines for a fraction of a second
(a real echo server, real load-generator processes, real Node) and the whole report path."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# bench/ is a top-level folder of the repo, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.config import BenchConfig
from bench.report import format_table, write_chart, write_json
from bench.run import Bench


def test_baselines_assemble_into_results_table_and_chart(tmp_path: Path) -> None:
    config = BenchConfig(
        quick=True,
        duration_s=0.2,
        warmup_s=0.1,
        repeats=1,
        loadgen_processes=1,
        batch_concurrency=2,
        cold_starts=2,
        memory_functions=0,
        e2e_duration_s=0.2,
        e2e_concurrency=1,
        e2e_repeats=1,
    )
    results = Bench(config, dict(os.environ), tmp_path, with_fnbox=False).run()

    write_json(results, tmp_path / "results.json")
    write_chart(results, tmp_path / "chart.png")
    table = format_table(results)

    loaded = json.loads((tmp_path / "results.json").read_text())
    baselines = loaded["baselines"]
    assert baselines["grpc_echo_rps_c32"] > 0
    assert 0 < baselines["grpc_echo_p50_ms_c1"] < 1000
    assert baselines["grpc_echo"]["c1"]["errors"] == 0
    assert baselines["node_loop_events_per_s"] > 0
    assert baselines["spawn_per_call_p50_ms"] > 0
    # The e2e floors relayed every webhook they acknowledged to the sink (the second and third
    # through the e2e source and destination functions on Node workers, the third over gRPC).
    for floor in ("relay_floor", "relay_functions_floor", "relay_grpc_floor"):
        relay = baselines[floor]
        assert relay["events_per_s"] > 0 and relay["undelivered"] == 0 and relay["errors"] == 0
    assert loaded["machine"]["cores"] >= 1 and loaded["machine"]["node"].startswith("v")
    # fnbox itself was not measured: its targets say so instead of passing or failing.
    assert set(loaded["targets"]) >= {"unary_rps_c32_vs_echo", "e2e_ack_p99_ms"}
    assert all(target["met"] is None for target in loaded["targets"].values())
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "(gRPC echo)" in table and "not measured" in table
    # The machine's CPU during each step is recorded (busy cores cannot exceed the cores).
    host = loaded["host_cpu"]["unary"]
    assert 0 < host["busy_cores"] <= loaded["machine"]["cores"] and host["steal_pct"] >= 0
    assert "steal: unary " in table
