"""Profile the fnbox server under one scenario's load: ``python -m bench.profile unary``.

Starts ``fnbox serve`` like the bench does, drives load from the load-generator processes,
and records the control process (or, with ``--process pipeline``, the pipeline child of
``fnbox serve``, where the gateway, bus and delivery run) with py-spy (``pip install py-spy``;
not a project dependency) for the timed window. Writes ``bench/out/profile-<scenario>.txt``
(collapsed stacks) and prints the hottest frames, self and inclusive.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.fnbox_api import INVOKE_METHOD, FnboxServer
from bench.loadgen import HttpSpec, LoadGenerator, LoadSpec, Spec
from bench.payloads import WEBHOOK, event_batch
from bench.procs import command_line, descendants
from bench.run import OUT_DIR, POOL_SETTINGS
from bench.scenarios import unary
from bench.scenarios.e2e import _setup as setup_e2e
from bench.servers import SinkServer


def summarise(collapsed: Path, top: int) -> str:
    """The hottest frames of a py-spy ``raw`` (collapsed stacks) file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    # Lines end in "\n" only: a frame name may hold a "\r" (which splitlines() would split on).
    for line in collapsed.read_bytes().decode(errors="replace").split("\n"):
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{total} samples", "-- self"]
    lines += [f"{n / total * 100:5.1f}% {frame}" for frame, n in own.most_common(top)]
    lines.append("-- inclusive")
    lines += [f"{n / total * 100:5.1f}% {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _pipeline_pid(serve_pid: int) -> int:
    """The pipeline child of ``fnbox serve`` (``python -m fnbox.gateway.child``)."""
    for pid in descendants(serve_pid):
        if "fnbox.gateway.child" in command_line(pid):
            return pid
    raise SystemExit(
        "no pipeline child under fnbox serve (is FNBOX_SERVE__PIPELINE_IN_PROCESS set?)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=["unary", "batch", "e2e"])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--process",
        choices=["control", "pipeline"],
        default="control",
        help="which process of the serve tree to record (pipeline: e2e only)",
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="only sample threads holding the GIL (Python CPU; leaves out time spent preempted "
        "inside a write that woke another process)",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if args.process == "pipeline" and args.scenario != "e2e":
        parser.error("--process pipeline records the pipeline child: use it with e2e")
    suffix = "" if args.process == "control" else f"-{args.process}"
    out = OUT_DIR / f"profile-{args.scenario}{suffix}.txt"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with (
        LoadGenerator(2) as loadgen,
        FnboxServer(dict(os.environ), POOL_SETTINGS, OUT_DIR / "fnbox-profile.log") as fnbox,
        SinkServer() as sink,
    ):
        spec: Spec
        if args.scenario == "e2e":
            url = setup_e2e(fnbox, sink)
            spec = HttpSpec(url, WEBHOOK, args.concurrency, args.seconds, warmup_s=1.0)
        else:
            request = unary.prepare_fnbox(fnbox)
            if args.scenario == "batch":
                from fnbox.functions.v1 import invocation_pb2

                parsed = invocation_pb2.InvokeFunctionRequest.FromString(request)
                request = invocation_pb2.InvokeFunctionRequest(
                    target=parsed.target, events=event_batch(200)
                ).SerializeToString()
            spec = LoadSpec(
                fnbox.grpc_target,
                INVOKE_METHOD,
                request,
                args.concurrency,
                args.seconds,
                warmup_s=1.0,
                metadata=fnbox.api.metadata,
            )
        duration = str(int(args.seconds) + 1)
        recorded = fnbox.pid if args.process == "control" else _pipeline_pid(fnbox.pid)
        recorder = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(recorded),
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                duration,
                "--output",
                str(out),
                "--nonblocking",
                *(["--gil"] if args.gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result = loadgen.run(spec, server_pid=fnbox.pid)
        recorder.wait()
    print(
        f"{args.scenario}: {result.rps:.0f}/s p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms"
        f", server {result.server_cores or 0:.2f} cores, load generator {result.loadgen_cores:.2f}"
    )
    print(summarise(out, args.top))


if __name__ == "__main__":
    main()
