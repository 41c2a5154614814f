"""The printed table, results.json and the PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.targets import E2E_FLOORS, Results, _get


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text}{unit}"


def _pair(results: Results, path: str, prefix: str = "") -> str:
    p50, p99 = _get(results, f"{path}.{prefix}p50_ms"), _get(results, f"{path}.{prefix}p99_ms")
    return f"{_fmt(p50)} / {_fmt(p99)}"


def _rps_p50(results: Results, path: str) -> str:
    return f"{_fmt(_get(results, f'{path}.rps'))} / {_fmt(_get(results, f'{path}.p50_ms'))}"


def _rows(results: Results) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for c in ("c1", "c8", "c32"):
        fn, base = f"unary.{c}", f"baselines.grpc_echo.{c}"
        rows.append(
            (
                f"unary {c[1:]} caller(s): rps",
                _fmt(_get(results, f"{fn}.rps")),
                _fmt(_get(results, f"{base}.rps")) + " (gRPC echo)",
                _fmt(_get(results, f"ratios.unary_rps_{c}_vs_echo"), "x"),
            )
        )
        rows.append(
            (
                f"unary {c[1:]} caller(s): p50 / p99 ms",
                _pair(results, fn),
                _pair(results, base),
                "",
            )
        )
    for c in ("c1", "c32"):
        rows.append(
            (
                f"unary {c[1:]} caller(s): rps / p50 ms vs gRPC + 1 worker round trip",
                _rps_p50(results, f"unary.{c}"),
                _rps_p50(results, f"baselines.grpc_worker_floor.{c}") + " (echo + worker)",
                _fmt(_get(results, f"ratios.unary_rps_{c}_vs_worker_floor"), "x"),
            )
        )
    rows.append(
        (
            "unary 32 callers: server CPU µs/call",
            _fmt(_get(results, "unary.c32.server_cpu_us_per_call")),
            _fmt(_get(results, "baselines.grpc_echo.c32.server_cpu_us_per_call"))
            + " (gRPC echo); "
            + _fmt(_get(results, "baselines.grpc_worker_floor.c32.server_cpu_us_per_call"))
            + " (echo + worker)",
            _fmt(_get(results, "ratios.unary_cpu_per_call_c32_vs_echo"), "x"),
        )
    )
    for size in ("b1", "b20", "b200"):
        rows.append(
            (
                f"batch of {size[1:]}: events/s",
                _fmt(_get(results, f"batch.{size}.events_per_s")),
                _fmt(_get(results, f"baselines.node_loop.{size}")) + " (in-Node loop)",
                _fmt(_get(results, f"ratios.batch_{size}_vs_node_loop"), "x"),
            )
        )
    rows.append(
        (
            "batch of 200: server CPU µs/event",
            _fmt(_get(results, "batch.b200.server_cpu_us_per_event")),
            "",
            "",
        )
    )
    spawn = (
        f"{_fmt(_get(results, 'baselines.spawn_per_call_p50_ms'))} / "
        f"{_fmt(_get(results, 'baselines.spawn_per_call_p99_ms'))} (spawn per call)"
    )
    for mode in ("warm_pool", "no_pool"):
        path = f"cold_start.{mode}"
        rows.append(
            (
                f"cold start, {mode.replace('_', ' ')}: p50 / p99 ms",
                _pair(results, path),
                spawn,
                _fmt(_get(results, f"ratios.cold_start_{mode}_p50_vs_spawn"), "x"),
            )
        )
    for floor, label in E2E_FLOORS:
        base = f"baselines.{floor}"
        rows.append(
            (
                f"e2e: webhooks/s vs {label}",
                _fmt(_get(results, "e2e.events_per_s")),
                _fmt(_get(results, f"{base}.events_per_s")) + f" ({label})",
                _fmt(_get(results, f"ratios.e2e_vs_{floor}"), "x"),
            )
        )
        rows.append(
            (
                f"e2e: server CPU ms/webhook vs {label}",
                _fmt(_get(results, "e2e.server_cpu_ms_per_webhook")),
                _fmt(_get(results, f"{base}.server_cpu_ms_per_webhook")),
                _fmt(_get(results, f"ratios.e2e_cpu_per_webhook_vs_{floor}"), "x"),
            )
        )
        rows.append(
            (
                f"e2e: ack p50 / p99 ms vs {label}",
                _pair(results, "e2e", "ack_"),
                _pair(results, base, "ack_"),
                "",
            )
        )
    rows.append(
        (
            "load generator CPU (cores): unary 32 / batch 200 / e2e",
            " / ".join(
                _fmt(_get(results, path))
                for path in (
                    "unary.c32.loadgen_cores",
                    "batch.b200.loadgen_cores",
                    "e2e.loadgen_cores",
                )
            ),
            _fmt(_get(results, "baselines.grpc_echo.c32.loadgen_cores")) + " (gRPC echo, 32)",
            "",
        )
    )
    pss = _fmt(_get(results, "memory.worker_pss_mib"))
    rows.append(("idle specialised worker: PSS MiB", pss, "", ""))
    rss = _fmt(_get(results, "memory.control_rss_mib"))
    rows.append(("control service, 100 functions warm: RSS MiB", rss, "", ""))
    return rows


def format_table(results: Results) -> str:
    """Markdown tables: the figures with their baselines, then the targets."""
    lines = ["| figure | fnbox | baseline (same run) | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(results)]
    lines += ["", "| target | measured | threshold | met |", "|---|---|---|---|"]
    for name, target in results.get("targets", {}).items():
        met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
        threshold = f"{target['op']} {_fmt(target['threshold'])}"
        lines.append(f"| {name} | {_fmt(target['value'])} | {threshold} | {met} |")
    host: dict[str, dict[str, float]] = results.get("host_cpu", {})
    measured = {name: cpu for name, cpu in host.items() if cpu}
    if measured:
        lines.append("")
        lines.append(
            "- the machine during each step, busy cores (all processes) and the hypervisor's "
            "steal: "
            + ", ".join(
                f"{name} {_fmt(cpu['busy_cores'])} ({_fmt(cpu['steal_pct'])}%)"
                for name, cpu in measured.items()
            )
        )
    skipped: dict[str, str] = results.get("skipped", {})
    if skipped:
        lines.append("")
        lines += [f"- skipped {name}: {why}" for name, why in skipped.items()]
    return "\n".join(lines)


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


def _bars(ax: Any, labels: list[str], series: dict[str, list[float | None]], title: str) -> None:
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series.items()):
        xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
        heights = [value or 0.0 for value in values]
        bars = ax.bar(xs, heights, width, label=name)
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if value is None else _fmt(value)
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def write_chart(results: Results, path: Path) -> None:
    """A 2x4 PNG: unary rps and latency, batch, cold start, memory, e2e, target attainment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def g(p: str) -> float | None:
        return _get(results, p)

    cs = ("c1", "c8", "c32")
    fig = plt.figure(figsize=(20, 9))
    grid = fig.add_gridspec(2, 4)
    axes = [[fig.add_subplot(grid[row, col]) for col in range(4)] for row in (0, 1)]
    axes[1][2].remove()
    axes[1][3].remove()
    attainment = fig.add_subplot(grid[1, 2:])
    _bars(
        axes[0][0],
        ["1", "8", "32"],
        {
            "fnbox": [g(f"unary.{c}.rps") for c in cs],
            "gRPC echo": [g(f"baselines.grpc_echo.{c}.rps") for c in cs],
            "echo + 1 worker round trip": [g(f"baselines.grpc_worker_floor.{c}.rps") for c in cs],
        },
        "unary InvokeFunction: calls/s by concurrent callers",
    )
    _bars(
        axes[0][1],
        ["p50 c1", "p99 c1", "p50 c8", "p99 c8", "p50 c32", "p99 c32"],
        {
            "fnbox": [g(f"unary.{c}.{q}_ms") for c in cs for q in ("p50", "p99")],
            "gRPC echo": [g(f"baselines.grpc_echo.{c}.{q}_ms") for c in cs for q in ("p50", "p99")],
            "echo + worker": [
                g(f"baselines.grpc_worker_floor.{c}.{q}_ms") for c in cs for q in ("p50", "p99")
            ],
        },
        "unary latency (ms, log)",
    )
    axes[0][1].set_yscale("log")
    _bars(
        axes[0][2],
        ["1", "20", "200"],
        {
            "fnbox": [g(f"batch.b{n}.events_per_s") for n in (1, 20, 200)],
            "in-Node loop": [g(f"baselines.node_loop.b{n}") for n in (1, 20, 200)],
        },
        "batch: events/s by batch size (log)",
    )
    axes[0][2].set_yscale("log")
    axes[0][2].set_ylim(bottom=100)
    _bars(
        axes[1][0],
        ["p50", "p99"],
        {
            "warm pool": [g("cold_start.warm_pool.p50_ms"), g("cold_start.warm_pool.p99_ms")],
            "no pool": [g("cold_start.no_pool.p50_ms"), g("cold_start.no_pool.p99_ms")],
            "spawn per call": [
                g("baselines.spawn_per_call_p50_ms"),
                g("baselines.spawn_per_call_p99_ms"),
            ],
        },
        "cold start: first invocation (ms)",
    )
    _bars(
        axes[1][1],
        ["worker PSS", "worker USS", "control RSS / 10"],
        {
            "MiB": [
                g("memory.worker_pss_mib"),
                g("memory.worker_uss_mib"),
                None if g("memory.control_rss_mib") is None else g("memory.control_rss_mib") / 10,  # type: ignore[operator]
            ]
        },
        "memory (MiB; control RSS shown /10)",
    )
    e2e_labels = ["webhooks/s ÷ 100", "ack p50 ms", "ack p99 ms"]
    _bars(
        axes[0][3],
        e2e_labels,
        {
            system: [
                None if g(f"{path}.events_per_s") is None else g(f"{path}.events_per_s") / 100,  # type: ignore[operator]
                g(f"{path}.ack_p50_ms"),
                g(f"{path}.ack_p99_ms"),
            ]
            for system, path in (
                ("fnbox", "e2e"),
                *((label, f"baselines.{floor}") for floor, label in E2E_FLOORS),
            )
        },
        "e2e: webhook → sink",
    )
    _attainment(attainment, results)
    machine = results.get("machine", {})
    fig.suptitle(
        f"fnbox bench — {machine.get('cpu_model', '?')}, {machine.get('cores', '?')} cores, "
        f"Python {machine.get('python', '?')}, Node {machine.get('node', '?')}"
        + (" (quick run)" if results.get("config", {}).get("quick") else ""),
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _attainment(ax: Any, results: Results) -> None:
    """Each target as measured/threshold (>= targets) or threshold/measured (<= targets):
    1.0 or more means met."""
    names: list[str] = []
    scores: list[float] = []
    colors: list[str] = []
    for name, target in results.get("targets", {}).items():
        value, threshold = target["value"], target["threshold"]
        names.append(name)
        if value is None or threshold is None or value <= 0:
            scores.append(0.0)
            colors.append("lightgrey")
            continue
        score = value / threshold if target["op"] == ">=" else threshold / value
        scores.append(min(score, 5.0))
        colors.append("tab:green" if target["met"] else "tab:red")
    ax.barh(range(len(names)), scores, color=colors)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_title("targets: score >= 1 is met (grey: not measured)", fontsize=10)
