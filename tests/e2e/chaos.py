"""Killing things at random while load runs: Node workers (the executor respawns them) and,
in the scale-out deployment, whole gateway/delivery replicas (restarted after a moment)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.system import System


def descendants(root: int) -> list[int]:
    """Every live process below ``root``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def node_workers(root: int) -> list[int]:
    workers = []
    for pid in descendants(root):
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if argv0.endswith(b"node"):
            workers.append(pid)
    return workers


@dataclass
class Chaos:
    """``run()`` until cancelled; counts what it killed."""

    system: System
    worker_every: float = 3.0
    replica_every: float = 8.0
    workers_killed: int = 0
    replicas_killed: list[str] = field(default_factory=list)

    async def run(self) -> None:
        await asyncio.gather(self._workers(), self._replicas())

    async def _workers(self) -> None:
        owner = "control" if self.system.scale_out else "serve"
        while True:
            await asyncio.sleep(self.worker_every)
            process = self.system.procs[owner].process
            if process is None:
                continue
            workers = node_workers(process.pid)
            if workers:
                try:
                    os.kill(random.choice(workers), signal.SIGKILL)
                    self.workers_killed += 1
                except ProcessLookupError:
                    pass

    async def _replicas(self) -> None:
        if not self.system.scale_out:
            return
        replicas = [n for n in self.system.procs if n.startswith(("gateway", "delivery"))]
        while True:
            await asyncio.sleep(self.replica_every)
            victim = random.choice(replicas)
            self.system.kill9(victim)
            self.replicas_killed.append(victim)
            await asyncio.sleep(self.replica_every / 2)
            self.system.procs[victim].start()
