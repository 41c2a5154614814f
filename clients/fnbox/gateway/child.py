"""The pipeline of ``fnbox serve`` in a child process, and the parent's side of it.

``fnbox serve`` runs the control service in its own process and, by default, the webhook
pipeline (gateway, bus, source processor, router, delivery workers: :class:`PipelineComponent`)
in a child process started with ``python -m fnbox.gateway.child``, so each gets a core and
webhook acknowledgements never wait behind invocation work.

The protocol between the two:

- the parent writes one JSON line on the child's **stdin**: the settings, the control
  service's address and the admin token (never in argv or the environment), then keeps stdin
  open; **EOF on stdin** (the parent is gone) makes the child stop, and so does the parent's
  death signal (``PR_SET_PDEATHSIG``);
- the child answers one JSON line on a **status pipe** (a file descriptor the parent passes
  in): ``{"ready": ["http HOST:PORT"]}`` once it serves, or ``{"error": "…"}`` (one line)
  when it could not start;
- **SIGTERM** stops the child: the gateway stops accepting, in-flight work finishes (what is
  not acknowledged is redelivered from the bus), it exits 0. SIGINT is ignored: a Ctrl-C
  reaches the parent, which stops the child in its shutdown order.

:class:`ChildPipeline` is the parent's side: a ``fnbox serve`` component that starts the
child, prints its endpoint lines, restarts it with backoff when it dies (the control service
keeps serving meanwhile), and on stop sends SIGTERM, waits, then SIGKILLs. It also makes the
metrics of both processes one scrape: the gateway's ``GET /metrics`` includes the control
process's, fetched from a loopback endpoint of the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ChildPipeline", "PipelineStartError", "child_pipeline_component", "main"]

log = logging.getLogger("fnbox.serve")

_MODULE = "fnbox.gateway.child"
# How long a child may take to report ready (imports, bus open, bind).
_START_TIMEOUT_S = 60.0
# Restart delays after a crash: doubled per consecutive crash, reset once a child ran this long.
_RESTART_FIRST_S = 0.5
_RESTART_MAX_S = 30.0
_RESTART_RESET_AFTER_S = 30.0


class PipelineStartError(Exception):
    """The pipeline process could not start; the message is one line, fit for the user."""


# --------------------------------------------------------------------------- parent side


class ChildPipeline:
    """A ``fnbox serve`` component running :class:`PipelineComponent` in a child process."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        stop_timeout_s: float,
        stopping: asyncio.Event | None = None,
        python: str | None = None,
    ) -> None:
        self._config = dict(config)
        # fnbox serve's "asked to stop" (a SIGTERM to the process group reaches both).
        self._shutdown_requested = stopping
        self._stop_timeout_s = stop_timeout_s
        self._python = python or sys.executable
        self._proc: asyncio.subprocess.Process | None = None
        self._started_at = 0.0
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._metrics: Any = None  # MetricsServer of this (control) process, for the child
        self._session: Any = None  # aiohttp session fetching the child's metrics
        self._source: Any = None
        self.gateway_address = ""  # HOST:PORT the child's gateway listens on
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The current child's process id (None between a crash and its restart)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def start(self) -> list[str]:
        from fnbox.telemetry.prometheus import MetricsServer

        # The child's /metrics includes this process's metrics, fetched from here.
        self._metrics = MetricsServer(
            "127.0.0.1:0", purpose="control-process metrics for the gateway's /metrics (loopback)"
        )
        self._config["control_metrics"] = await self._metrics.start()
        try:
            lines = await self._spawn()
        except BaseException:
            await self._metrics.stop()
            raise
        # Restarts bind the same port, even when it was chosen by the system (port 0).
        for line in lines:
            kind, _, address = line.partition(" ")
            if kind == "http":
                self.gateway_address = address
                host = str(self._config["gateway"].get("listen", "")).rsplit(":", 1)[0]
                port = address.rsplit(":", 1)[1]
                self._config["gateway"] = {**self._config["gateway"], "listen": f"{host}:{port}"}
        self._add_metrics_source()
        self._supervisor = asyncio.create_task(self._supervise(), name="pipeline-supervisor")
        return lines

    async def stop(self) -> None:
        """SIGTERM the child, wait for it to drain (bounded), then SIGKILL it."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        try:
            if self._proc is not None:
                await self._terminate(self._proc)
        finally:
            if self._source is not None:
                from fnbox.telemetry.prometheus import remove_source

                remove_source(self._source)
            if self._session is not None:
                await self._session.close()
            if self._metrics is not None:
                await self._metrics.stop()

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self._stop_timeout_s)
            except TimeoutError:
                log.warning(
                    "the pipeline process (pid %d) did not stop within %.0f s; killing it",
                    proc.pid,
                    self._stop_timeout_s,
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.returncode not in (0, -signal.SIGKILL):
            log.warning("the pipeline process exited with %s", _describe(proc.returncode))

    async def _spawn(self) -> list[str]:
        """Start a child and wait for its first report; raises :class:`PipelineStartError`."""
        loop = asyncio.get_running_loop()
        status_read, status_write = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                self._python,
                "-m",
                _MODULE,
                stdin=asyncio.subprocess.PIPE,
                stdout=None,  # the same stdout and stderr as fnbox serve
                stderr=None,
                pass_fds=(status_write,),
            )
        except BaseException:
            os.close(status_read)
            raise
        finally:
            os.close(status_write)  # the child holds the only write end now: EOF when it dies
        self._proc = proc
        self._started_at = time.monotonic()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(status_read, "rb", 0)
        )
        try:
            assert proc.stdin is not None
            config = {**self._config, "status_fd": status_write, "parent_pid": os.getpid()}
            proc.stdin.write(json.dumps(config).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            try:
                raw = await asyncio.wait_for(reader.readline(), _START_TIMEOUT_S)
            except TimeoutError:
                await self._kill(proc)
                raise PipelineStartError(
                    f"the pipeline process did not start within {_START_TIMEOUT_S:.0f} s"
                ) from None
        except BaseException:
            await self._kill(proc)
            raise
        finally:
            transport.close()
        report: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            report = json.loads(raw) if raw else {}
        if "ready" in report:
            return [str(line) for line in report["ready"]]
        await self._kill(proc)
        if "error" in report:
            raise PipelineStartError(str(report["error"]))
        raise PipelineStartError(
            f"the pipeline process exited with {_describe(proc.returncode)} before it was ready"
        )

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()

    async def _supervise(self) -> None:
        """Restart the child when it dies, with exponential backoff (the arbiter's job)."""
        delay = _RESTART_FIRST_S
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            code = await proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
            if code == 0 and self._shutdown_requested is not None:
                # A clean exit: most likely a SIGTERM sent to the whole process group, which
                # fnbox serve is about to handle; then it is a stop, not a crash.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._shutdown_requested.wait(), 1.0)
            if self._stopping or (
                self._shutdown_requested is not None and self._shutdown_requested.is_set()
            ):
                return
            if time.monotonic() - self._started_at >= _RESTART_RESET_AFTER_S:
                delay = _RESTART_FIRST_S
            log.error(
                "the pipeline process (pid %d) exited with %s; restarting it in %.1f s",
                proc.pid,
                _describe(code),
                delay,
            )
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RESTART_MAX_S)
                try:
                    await self._spawn()
                except PipelineStartError as exc:
                    log.error(
                        "restarting the pipeline process failed: %s; retrying in %.1f s",
                        exc,
                        delay,
                    )
                    continue
                self.restarts += 1
                log.info("the pipeline process restarted (pid %s)", self.pid)
                break

    def _add_metrics_source(self) -> None:
        """This process's own metrics endpoints (``metrics_listen``) include the child's."""
        import aiohttp
        from fnbox.telemetry.prometheus import add_source

        host, _, port = self.gateway_address.rpartition(":")
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "[::1]"}.get(
            host, host
        )
        url = f"http://{host}:{port}/metrics?scope=process"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        session = self._session

        async def child_metrics() -> str:
            async with session.get(url) as response:
                response.raise_for_status()
                text: str = await response.text()
                return text

        self._source = child_metrics
        add_source(child_metrics)


def child_pipeline_component(context: Any) -> ChildPipeline:
    """The factory ``fnbox serve`` calls with its ``ComponentContext`` (see
    ``fnbox.gateway.embedded.pipeline_component`` for the in-process one)."""
    settings = context.settings
    if not context.admin_token:
        raise PipelineStartError("the pipeline needs the admin token of the data directory")
    telemetry = settings.telemetry.model_dump(mode="json")
    telemetry["metrics_listen"] = ""  # fnbox serve's own endpoint is the parent's
    config = {
        "control_target": context.control_target,
        "admin_token": context.admin_token,
        "data_dir": str(settings.data_dir),
        "bus": {"url": settings.bus.url, "namespace": getattr(settings.bus, "namespace", "fnbox")},
        "gateway": settings.gateway.model_dump(mode="json"),
        "delivery": settings.delivery.model_dump(mode="json"),
        "telemetry": telemetry,
        "stop_timeout_s": float(settings.serve.pipeline_stop_timeout_s),
    }
    return ChildPipeline(
        config,
        stop_timeout_s=float(settings.serve.pipeline_stop_timeout_s),
        stopping=getattr(context, "stopping", None),
    )


def _describe(code: int | None) -> str:
    if code is None:
        return "no status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


# --------------------------------------------------------------------------- child side


def _set_parent_death_signal(parent_pid: int) -> None:
    """Get SIGTERM when the parent dies (Linux); exit at once if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        raise SystemExit(0)


def _report(fd: int, message: Mapping[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(message).encode() + b"\n")
        os.close(fd)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, OSError | ValueError) else f"{type(exc).__name__}: {text}"


async def _serve(config: Mapping[str, Any]) -> int:
    from fnbox.delivery.runtime import BusSection
    from fnbox.delivery.settings import DeliverySettings
    from fnbox.gateway.embedded import PipelineComponent
    from fnbox.gateway.settings import GatewaySettings
    from fnbox.telemetry.prometheus import add_source

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    status_fd = int(config["status_fd"])

    def stdin_readable() -> None:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:  # the parent closed our stdin: it stopped or died
            loop.remove_reader(0)
            stopping.set()

    loop.add_reader(0, stdin_readable)

    control_metrics = str(config.get("control_metrics") or "")
    session: Any = None
    if control_metrics:
        import aiohttp

        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        url = f"http://{control_metrics}/metrics?scope=process"

        async def control_process_metrics() -> str:
            async with session.get(url) as response:
                response.raise_for_status()
                text: str = await response.text()
                return text

        add_source(control_process_metrics)

    component: PipelineComponent | None = None
    try:
        try:
            component = PipelineComponent(
                control_target=str(config["control_target"]),
                token=str(config["admin_token"]),
                bus=BusSection.model_validate(config["bus"]),
                data_dir=Path(config["data_dir"]),
                gateway=GatewaySettings.model_validate(config["gateway"]),
                delivery=DeliverySettings.model_validate(config["delivery"]),
            )
            lines = await component.start()
        except Exception as exc:
            log.debug("the pipeline failed to start", exc_info=True)
            _report(status_fd, {"error": _one_line(exc)})
            if component is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(component.stop(), 10)
            return 1
        _report(status_fd, {"ready": lines})
        # As the control process does (fnbox.server.main): what start-up built lives as long
        # as the process, so a full collection need not walk it. Unfrozen, each full
        # collection of this process stalled its loop (gateway acks included) 20-40 ms, a
        # few times a second under load.
        gc.collect()
        gc.freeze()
        await stopping.wait()
        try:
            # Within the parent's bound (it SIGKILLs at stop_timeout_s), to exit on our own.
            bound = 0.9 * float(config.get("stop_timeout_s", 30))
            await asyncio.wait_for(component.stop(), bound)
        except TimeoutError:
            log.warning("the pipeline did not stop in time; exiting")
            return 1
        return 0
    finally:
        if session is not None:
            await session.close()


def main() -> None:
    """``python -m fnbox.gateway.child``: one JSON line of settings on stdin, then serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    line = sys.stdin.buffer.readline()
    if not line:
        raise SystemExit(0)  # the parent is gone before it told us anything
    config = json.loads(line)
    _set_parent_death_signal(int(config["parent_pid"]))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [pipeline] %(name)s: %(message)s"
    )
    from fnbox.telemetry.settings import TelemetrySettings
    from fnbox.telemetry.setup import install

    installed = install(TelemetrySettings.model_validate(config["telemetry"]))
    try:
        code = asyncio.run(_serve(config))
    finally:
        installed.shutdown()
    raise SystemExit(code)


if __name__ == "__main__":
    main()
