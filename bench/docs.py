"""``python -m bench.docs``: put the last run's figures into the README's Performance section.

Rewrites only the block between the ``<!-- bench:figures -->`` markers (the table, the
machine, the date) and copies ``bench/out/chart.png`` to ``docs/bench.png``; the prose around
the block is written by hand.
"""

from __future__ import annotations

import json
import shutil
import time

from bench.report import format_table
from bench.run import OUT_DIR
from bench.servers import REPO_ROOT

BEGIN, END = "<!-- bench:figures -->", "<!-- /bench:figures -->"


def figures_block(results: dict[str, object]) -> str:
    machine = results.get("machine", {})
    config = results.get("config", {})
    assert isinstance(machine, dict) and isinstance(config, dict)
    load = machine.get("load_avg_1m_5m_at_start", ["?", "?"])
    mode = "BENCH_QUICK=1 make bench" if config.get("quick") else "make bench"
    source = results.get("source", {})
    assert isinstance(source, dict)
    revision = f"commit {source.get('commit')}" + (
        " plus uncommitted work in progress" if source.get("uncommitted_changes") else ""
    )
    lines = [
        BEGIN,
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} ({revision}) with `{mode}` on "
        f"{machine.get('cpu_model')}, {machine.get('cores')} cores, "
        f"{machine.get('memory_gib')} GiB, Python {machine.get('python')}, Node "
        f"{machine.get('node')} (load average at start {load[0]}/{load[1]}: {_quiet(load)}"
        f"{_steal(results)}). "
        "Throughput and latency figures are medians of "
        f"{config.get('repeats')} runs of {config.get('duration_s')} s each (e2e: "
        f"{config.get('e2e_repeats', '?')} runs); cold starts are p50/p99 of "
        f"{config.get('cold_starts', '?')} first invocations per mode.",
        "",
        format_table(results),
        "",
        "![fnbox benchmarks](docs/bench.png)",
        END,
    ]
    return "\n".join(lines)


def _quiet(load: list[object]) -> str:
    """How much to trust the absolute figures, from the 1-minute load average at the start."""
    one_minute = load[0] if load else None
    if isinstance(one_minute, int | float) and one_minute < 1.0:
        return "a quiet machine; the same-run ratios are still the figures to compare"
    return (
        "the machine was shared, so absolute figures are noisy; ratios to the same-run "
        "baselines are the robust ones"
    )


def _steal(results: dict[str, object]) -> str:
    """The hypervisor's largest steal during a step, when it was large enough to matter."""
    host = results.get("host_cpu", {})
    assert isinstance(host, dict)
    steals = [(cpu["steal_pct"], name) for name, cpu in host.items() if cpu]
    if not steals or max(steals)[0] < 2.0:
        return ""
    pct, name = max(steals)
    return f"; the hypervisor took {pct}% of the CPU during {name}, lowering its figures as much"


def main() -> None:
    results = json.loads((OUT_DIR / "results.json").read_text())
    doc = REPO_ROOT / "README.md"
    text = doc.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    doc.write_text(text[:start] + figures_block(results) + text[stop:])
    shutil.copyfile(OUT_DIR / "chart.png", REPO_ROOT / "docs" / "bench.png")
    print(f"updated the figures in {doc} and docs/bench.png")


if __name__ == "__main__":
    main()
