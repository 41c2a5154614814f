"""Servers under test, each in its own process (never in the load generator's)."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[1]


class ServerProcess:
    """A child process started in its own session, stopped as a group (TERM, grace, KILL)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self._log = open(log_path, "wb") if log_path else None
        self.process = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=self._log if self._log else subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.output: list[str] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for_line(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """Read stdout lines until one matches ``pattern``; raise if the process ends first."""
        assert self.process.stdout is not None
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        buffered = b""
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"server exited (rc={self.process.wait()}): {self.output}")
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    self.output.append(line)
                    match = regex.search(line)
                    if match:
                        return match
        finally:
            selector.close()
        raise TimeoutError(f"no line matching {pattern!r} within {timeout_s}s: {self.output}")

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``grace_s``."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        if self._log:
            self._log.close()


class PortServer:
    """A ``bench`` server module in a child process; it prints ``port N`` once it listens on
    127.0.0.1."""

    def __init__(self, module: str, *args: str) -> None:
        self._proc = ServerProcess([sys.executable, "-m", module, *args], cwd=REPO_ROOT)
        self.port = int(self._proc.wait_for_line(r"^port (\d+)$", timeout_s=30).group(1))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        self._proc.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EchoServer(PortServer):
    """The bare grpc.aio echo servicer (``bench.echo_server``) in a child process; with
    ``executor=True``, each call also makes one round trip to a warm fnbox worker."""

    def __init__(self, *, executor: bool = False) -> None:
        super().__init__("bench.echo_server", *(["--executor"] if executor else []))
        self.target = f"127.0.0.1:{self.port}"


class SinkServer(PortServer):
    """The counting HTTP sink (``bench.sink``) in a child process."""

    def __init__(self) -> None:
        super().__init__("bench.sink")
        self.url = f"http://127.0.0.1:{self.port}"

    def count(self) -> int:
        """Requests received so far (other than these count queries)."""
        with urllib.request.urlopen(f"{self.url}/count", timeout=10) as response:
            return int(response.read())


class RelayFloor(PortServer):
    """An e2e floor (``bench.relay_floor``) in a child process, relaying to ``sink_url``
    (through the e2e functions on Node workers with ``functions=True``; in a child process of
    its own, over a bare gRPC stream, with ``over_grpc=True`` too)."""

    def __init__(self, sink_url: str, *, functions: bool = False, over_grpc: bool = False) -> None:
        flags = (["--functions"] if functions else []) + (["--over-grpc"] if over_grpc else [])
        super().__init__("bench.relay_floor", sink_url, *flags)
        self.url = f"http://127.0.0.1:{self.port}/v1/sources/floor"
