"""Baselines that involve no fnbox code: the in-Node loop and a Node process per call."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from bench.machine import node_binary

_NODE_DIR = Path(__file__).with_name("node")


def node_loop_events_per_s(event: bytes, batch_size: int, duration_s: float) -> float:
    """Events per second when one Node process runs the handler in a loop (the limit)."""
    out = subprocess.run(
        [node_binary(), str(_NODE_DIR / "loop.js"), str(int(duration_s * 1000)), str(batch_size)],
        input=event,
        capture_output=True,
        check=True,
        timeout=duration_s + 30,
    )
    figures = json.loads(out.stdout)
    return float(figures["events"]) / float(figures["seconds"])


def spawn_per_call_ms(event: bytes) -> float:
    """Milliseconds from spawning a fresh Node process to reading its invocation's result."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [node_binary(), "--max-old-space-size=64", str(_NODE_DIR / "spawn_once.js")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(event)
    process.stdin.close()
    line = process.stdout.readline()
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    process.stdout.close()
    process.wait()
    if b'"OK"' not in line:
        raise RuntimeError(f"spawned node answered {line!r}")
    return elapsed_ms
