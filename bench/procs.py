"""Reading other processes from /proc: descendants, CPU time, RSS and PSS."""

from __future__ import annotations

import os
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ')' is fixed.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (not ``root`` itself)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the ')' the fields start at index 0 = state; utime and stime are fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and all its live descendants."""
    return sum(cpu_seconds(pid) for pid in [root, *descendants(root)])


def command_line(pid: int) -> list[str]:
    """argv of a process, empty when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _rollup_kib(pid: int, key: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def pss_mib(pid: int) -> float | None:
    """Proportional set size in MiB (shared pages split among their users)."""
    kib = _rollup_kib(pid, "Pss")
    return None if kib is None else kib / 1024


def rss_mib(pid: int) -> float | None:
    """Resident set size in MiB."""
    kib = _rollup_kib(pid, "Rss")
    return None if kib is None else kib / 1024


def uss_mib(pid: int) -> float | None:
    """Unique set size in MiB: the pages only this process maps (private clean + dirty)."""
    clean = _rollup_kib(pid, "Private_Clean")
    dirty = _rollup_kib(pid, "Private_Dirty")
    return None if clean is None or dirty is None else (clean + dirty) / 1024


def node_descendants(root: int) -> list[int]:
    """Descendants of ``root`` whose executable is a node binary."""
    found = []
    for pid in descendants(root):
        argv = command_line(pid)
        if argv and os.path.basename(argv[0]) == "node":
            found.append(pid)
    return found
