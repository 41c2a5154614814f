"""Aggregation shared by the scenarios: medians over repeated runs."""

from __future__ import annotations

from typing import Any

from bench.loadgen import LoadResult
from bench.stats import median, rounded

Section = dict[str, Any]


def summarise_load(runs: list[LoadResult]) -> Section:
    """Median rps, p50, p99 and CPU figures over repeated runs of the same load."""
    rps = median([run.rps for run in runs])
    server_cores = [run.server_cores for run in runs if run.server_cores is not None]
    per_call = [
        run.server_cpu_s / run.calls * 1e6
        for run in runs
        if run.server_cpu_s is not None and run.calls
    ]
    loadgen_per_call = [run.loadgen_cpu_s / run.calls * 1e6 for run in runs if run.calls]
    return {
        "rps": rounded(rps, 1),
        "p50_ms": rounded(median([run.p50_ms for run in runs])),
        "p99_ms": rounded(median([run.p99_ms for run in runs])),
        "errors": sum(run.errors for run in runs),
        "first_error": next((run.first_error for run in runs if run.first_error), ""),
        "runs": len(runs),
        "rps_runs": [rounded(run.rps, 1) for run in runs],
        "loadgen_cores": rounded(median([run.loadgen_cores for run in runs]), 2),
        "loadgen_cpu_us_per_call": rounded(median(loadgen_per_call), 1),
        "server_cores": rounded(median(server_cores), 2) if server_cores else None,
        "server_cpu_us_per_call": rounded(median(per_call), 1) if per_call else None,
    }
