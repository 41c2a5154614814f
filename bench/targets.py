"""Ratios against the baselines and the targets, computed from the assembled figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.stats import rounded

Results = dict[str, Any]


def _get(results: Results, path: str) -> float | None:
    node: Any = results
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) and not isinstance(node, bool) else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return rounded(numerator / denominator, 3)


# The e2e floors (bench/relay_floor.py), as results.json names them under ``baselines`` and as
# the report labels them, in the order each e2e repeat runs them.
E2E_FLOORS = (
    ("relay_floor", "bare durable relay"),
    ("relay_functions_floor", "relay + the 2 functions"),
    ("relay_grpc_floor", "relay + the 2 functions over gRPC"),
)


def compute_ratios(results: Results) -> dict[str, float | None]:
    """fnbox figure / baseline figure for each pair measured in the same run."""
    ratios: dict[str, float | None] = {}
    for c in ("c1", "c8", "c32"):
        ratios[f"unary_rps_{c}_vs_echo"] = _ratio(
            _get(results, f"unary.{c}.rps"), _get(results, f"baselines.grpc_echo.{c}.rps")
        )
    for c in ("c1", "c32"):
        ratios[f"unary_rps_{c}_vs_worker_floor"] = _ratio(
            _get(results, f"unary.{c}.rps"), _get(results, f"baselines.grpc_worker_floor.{c}.rps")
        )
    ratios["unary_cpu_per_call_c32_vs_echo"] = _ratio(
        _get(results, "unary.c32.server_cpu_us_per_call"),
        _get(results, "baselines.grpc_echo.c32.server_cpu_us_per_call"),
    )
    p50 = _get(results, "unary.c1.p50_ms")
    echo_p50 = _get(results, "baselines.grpc_echo_p50_ms_c1")
    ratios["unary_p50_c1_over_echo_ms"] = (
        rounded(p50 - echo_p50) if p50 is not None and echo_p50 is not None else None
    )
    for size in ("b1", "b20", "b200"):
        ratios[f"batch_{size}_vs_node_loop"] = _ratio(
            _get(results, f"batch.{size}.events_per_s"),
            _get(results, f"baselines.node_loop.{size}"),
        )
    spawn = _get(results, "baselines.spawn_per_call_p50_ms")
    for mode in ("warm_pool", "no_pool"):
        ratios[f"cold_start_{mode}_p50_vs_spawn"] = _ratio(
            _get(results, f"cold_start.{mode}.p50_ms"), spawn
        )
    for floor, _ in E2E_FLOORS:
        ratios[f"e2e_vs_{floor}"] = _ratio(
            _get(results, "e2e.events_per_s"), _get(results, f"baselines.{floor}.events_per_s")
        )
        ratios[f"e2e_cpu_per_webhook_vs_{floor}"] = _ratio(
            _get(results, "e2e.server_cpu_ms_per_webhook"),
            _get(results, f"baselines.{floor}.server_cpu_ms_per_webhook"),
        )
    return ratios


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    path: str  # where the measured value is, in results (ratios.* included)
    op: str  # ">=" or "<="
    threshold: float | None = None
    threshold_path: str | None = None  # a threshold measured in the same run
    threshold_offset: float = 0.0


TARGETS = (
    Target("unary_rps_c32_vs_echo", "ratios.unary_rps_c32_vs_echo", ">=", 0.8),
    Target(
        "unary_p50_c1_ms",
        "unary.c1.p50_ms",
        "<=",
        threshold_path="baselines.grpc_echo_p50_ms_c1",
        threshold_offset=0.3,
    ),
    Target("batch_b200_events_per_s", "batch.b200.events_per_s", ">=", 100_000),
    Target("batch_b200_vs_node_loop", "ratios.batch_b200_vs_node_loop", ">=", 0.15),
    Target("cold_start_warm_pool_p50_ms", "cold_start.warm_pool.p50_ms", "<=", 5.0),
    Target("cold_start_no_pool_p50_ms", "cold_start.no_pool.p50_ms", "<=", 60.0),
    Target("worker_pss_mib", "memory.worker_pss_mib", "<=", 16.0),
    Target("e2e_events_per_s", "e2e.events_per_s", ">=", 2_500),
    Target("e2e_ack_p99_ms", "e2e.ack_p99_ms", "<=", 25.0),
)


def evaluate_targets(results: Results) -> dict[str, dict[str, Any]]:
    """Each target with its measured value, threshold and ``met`` (None when not measured)."""
    evaluated: dict[str, dict[str, Any]] = {}
    for target in TARGETS:
        value = _get(results, target.path)
        threshold = target.threshold
        if target.threshold_path is not None:
            base = _get(results, target.threshold_path)
            threshold = None if base is None else rounded(base + target.threshold_offset)
        met: bool | None = None
        if value is not None and threshold is not None:
            met = value >= threshold if target.op == ">=" else value <= threshold
        evaluated[target.name] = {
            "value": value,
            "op": target.op,
            "threshold": threshold,
            "met": met,
            "path": target.path,
        }
    return evaluated
