"""Running fnbox as real processes for end-to-end tests: `fnbox serve`, or the scale-out
trio `fnbox control|gateway|delivery`, each in its own process group (kill -9 friendly)."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support import polling

REPO = Path(__file__).resolve().parents[2]

# Small retry and batching figures so fault tests take seconds, not hours.
FAST_PIPELINE_ENV = {
    "FNBOX_EXECUTOR__EGRESS_ALLOW": '["127.0.0.1/32"]',
    "FNBOX_GATEWAY__RETRY_FIRST_MIN_SECONDS": "0.05",
    "FNBOX_GATEWAY__RETRY_FIRST_MAX_SECONDS": "0.1",
    "FNBOX_GATEWAY__RETRY_MAX_SECONDS": "0.5",
    "FNBOX_GATEWAY__PLATFORM_RETRY_SECONDS": "0.2",
    "FNBOX_GATEWAY__DISCOVERY_SECONDS": "0.2",
    "FNBOX_GATEWAY__LEASE_SECONDS": "10",
    "FNBOX_GATEWAY__INSTANCE_CACHE_SECONDS": "0.2",
    "FNBOX_DELIVERY__RETRY_FIRST_SECONDS": "0.05",
    "FNBOX_DELIVERY__RETRY_MAX_SECONDS": "0.5",
    "FNBOX_DELIVERY__RETRY_MAX_AGE_SECONDS": "600",
    "FNBOX_DELIVERY__PLATFORM_RETRY_SECONDS": "0.2",
    "FNBOX_DELIVERY__DISCOVERY_SECONDS": "0.2",
    "FNBOX_DELIVERY__ROUTING_CACHE_SECONDS": "0.2",
    "FNBOX_DELIVERY__LEASE_SECONDS": "15",
    "FNBOX_DELIVERY__BATCH_MAX_WAIT_SECONDS": "0.3",
    "FNBOX_DELIVERY__BREAKER_OPEN_SECONDS": "0.5",
    "FNBOX_DELIVERY__REPLAY_POLL_SECONDS": "0.2",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# tests/support/polling.py's, at this suite's pace (its checks are RPCs and scrapes).
eventually = functools.partial(polling.eventually, every=0.1)


# SIGTERM the service when the test process dies, so that a killed pytest (CI's timeout, a
# ctrl-c that did not reach teardown) leaves no service running: util-linux's setpriv sets the
# parent-death signal and execs the command. (Not a preexec_fn: that forks this process, whose
# gRPC threads make a fork unsafe; a gateway child once hung there, its only output grpc's
# "epoll_wait error: Bad file descriptor".)
_STOP_WITH_THIS_PROCESS = (
    ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") is not None else []
)


@dataclass
class Proc:
    """One fnbox command in its own process group; output goes to ``log``."""

    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*_STOP_WITH_THIS_PROCESS, sys.executable, "-m", "fnbox.cli", *self.args],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        """SIGKILL the whole group (the service and its node workers), then reap."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None

    def terminate(self) -> None:
        self.signal_stop()
        self.reap()

    def signal_stop(self) -> None:
        """SIGTERM the group (the service shuts down in order)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def reap(self, timeout: float = 30) -> None:
        """Wait for the exit after :meth:`signal_stop`; SIGKILL when it does not come."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@dataclass
class System:
    """A running fnbox: ``target`` (gRPC), ``http`` (webhook base URL), ``token``."""

    data_dir: Path
    env: dict[str, str]
    scale_out: bool = False
    grpc_port: int = field(default_factory=free_port)
    http_ports: list[int] = field(default_factory=list)
    metrics_ports: list[int] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_ports[0]}"

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def metrics_urls(self) -> list[str]:
        """Where the processes that route events serve their metrics (GET /metrics)."""
        if not self.scale_out:
            return [f"{self.http}/metrics"]
        return [f"http://127.0.0.1:{port}/metrics" for port in self.metrics_ports]

    def _proc(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> Proc:
        common = ["--data-dir", str(self.data_dir), "--target", self.target]
        proc = Proc([*args, *common], {**self.env, **(env or {})}, self.data_dir / f"{name}.log")
        self.procs[name] = proc
        return proc

    async def start(self, *, gateways: int = 2, deliveries: int = 2) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.http_ports:
            self.http_ports = [free_port() for _ in range(gateways if self.scale_out else 1)]
        if not self.scale_out:
            self._proc(
                "serve",
                [
                    "serve",
                    "--grpc-listen",
                    self.target,
                    "--http-listen",
                    f"127.0.0.1:{self.http_ports[0]}",
                ],
            )
        else:
            self._proc("control", ["control", "--grpc-listen", self.target])
            for i, port in enumerate(self.http_ports):
                self._proc(f"gateway{i}", ["gateway", "--http-listen", f"127.0.0.1:{port}"])
            if not self.metrics_ports:
                self.metrics_ports = [free_port() for _ in range(deliveries)]
            for i, port in enumerate(self.metrics_ports):
                metrics = {"FNBOX_TELEMETRY__METRICS_LISTEN": f"127.0.0.1:{port}"}
                self._proc(f"delivery{i}", ["delivery"], metrics)
        await self.restart()

    async def restart(self, only: str | None = None) -> None:
        """Start every process (or ``only`` one) that is not running, and wait until ready."""
        names = [only] if only else list(self.procs)
        if "control" in names:  # the pipeline processes need the control service's token
            names.remove("control")
            names.insert(0, "control")
        for name in names:
            proc = self.procs[name]
            if not proc.alive():
                proc.start()
            if name in ("control", "serve"):
                await eventually(
                    self._control_ready,
                    within=60,
                    what=functools.partial(_waited, name, proc),
                )
        for port in self.http_ports:
            await eventually(
                functools.partial(_healthy, port),
                within=60,
                what=functools.partial(_waited, f"the gateway on :{port}", self),
            )

    def _control_ready(self) -> bool:
        return (self.data_dir / "admin.token").exists() and _port_open(self.grpc_port)

    def kill9(self, name: str | None = None) -> None:
        for proc_name, proc in self.procs.items():
            if name is None or proc_name == name:
                proc.kill9()

    def stop(self) -> None:
        """SIGTERM the pipeline processes (all at once), then the control service they talk
        to (which would otherwise wait for their invocation streams to end)."""
        pipeline = [proc for name, proc in self.procs.items() if name != "control"]
        for proc in pipeline:
            proc.signal_stop()
        for proc in pipeline:
            proc.reap()
        if "control" in self.procs:
            self.procs["control"].terminate()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.output()}" for n, p in self.procs.items())


def _waited(what: str, source: Proc | System) -> str:
    return f"{what}\n{source.logs() if isinstance(source, System) else source.output()}"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _healthy(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=1)
            ) as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def metric(system: System, name: str) -> float:
    """The sum of every sample of metric ``name`` (Prometheus name, any labels) over the
    processes of ``system`` that serve one; a process that does not answer counts 0."""
    total = 0.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for url in system.metrics_urls:
            try:
                async with session.get(url) as response:
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError):
                continue
            for line in text.splitlines():
                sample, _, value = line.rpartition(" ")
                if sample == name or sample.startswith(name + "{"):
                    total += float(value)
    return total


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNBOX_")}
    env.update(FAST_PIPELINE_ENV)
    env.update(extra)
    return env
