"""The process model of ``fnbox serve``: the webhook pipeline runs in a child process that is
restarted when it dies, stops before the control service, never outlives ``fnbox serve``, and
gets the admin token neither in argv nor in its environment."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from fnbox.client import FnboxClient

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import REPO, System, base_env, eventually

pytestmark = pytest.mark.timeout(240)

CHILD_MODULE = "fnbox.gateway.child"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


def _argv(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pipeline_child(serve_pid: int) -> int | None:
    for pid in _children(serve_pid):
        if CHILD_MODULE in _argv(pid) and _alive(pid):
            return pid
    return None


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[System]:
    system = System(tmp_path / "data", base_env({"FNBOX_EXECUTOR__WARM_WORKERS": "1"}))
    await system.start()
    try:
        yield system
    finally:
        system.stop()


def _serve_pid(system: System) -> int:
    process = system.procs["serve"].process
    assert process is not None
    return process.pid


async def _delivered(system: System, sink: Sink, path: str, count: int) -> None:
    async with FnboxClient(system.target, system.token) as client:
        src = await pipeline.source(client, f"src-{path}")
        await pipeline.destination(client, f"dst-{path}", sink.url(path), [src.name])
    url = pipeline.webhook_url(system.http, src)
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            status, answer, _ = await pipeline.post(session, url, pipeline.track(i))
            assert status == 202, answer
    await eventually(
        lambda: len(sink.received(path)) >= count,
        within=60,
        what=lambda: f"{count} events at {path}\n{system.logs()}",
    )


async def test_pipeline_child_serves_restarts_after_a_crash_and_stops_with_serve(
    serve: System, sink: Sink
) -> None:
    serve_pid = _serve_pid(serve)
    child = _pipeline_child(serve_pid)
    assert child is not None, serve.logs()

    # The admin token reaches the child on its stdin only.
    token = serve.token
    assert not any(token in arg for arg in _argv(child))
    assert token.encode() not in _environ(child)
    assert token not in serve.logs()

    await _delivered(serve, sink, "before", 3)

    # One scrape on the gateway's port shows both processes' metrics.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{serve.http}/metrics") as response:
            text = await response.text()
    assert "fnbox_gateway_requests_total{" in text  # the pipeline process
    assert "fnbox_invocations_total{" in text  # the control process
    assert text.count("# TYPE fnbox_invocations_total ") == 1

    # The child dies: fnbox serve keeps the control service up and starts a new child on
    # the same port.
    os.kill(child, signal.SIGKILL)
    await eventually(
        lambda: (new := _pipeline_child(serve_pid)) is not None and new != child,
        within=30,
        what=lambda: f"a new pipeline process\n{serve.logs()}",
    )
    await serve.restart()  # waits until the gateway answers again
    assert serve.procs["serve"].alive()
    assert "exited with signal SIGKILL; restarting it" in serve.logs()
    await _delivered(serve, sink, "after", 3)

    # SIGTERM to fnbox serve alone: it stops the child, then itself; both exit cleanly.
    child = _pipeline_child(serve_pid)
    assert child is not None
    process = serve.procs["serve"].process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, serve.logs()
    assert not _alive(child)
    logs = serve.logs()
    assert logs.count("exited with") == 1, logs  # only the crash above; the stop was clean
    assert "Traceback" not in logs


async def test_pipeline_child_does_not_outlive_serve(serve: System) -> None:
    serve_pid = _serve_pid(serve)
    child = _pipeline_child(serve_pid)
    assert child is not None
    os.kill(serve_pid, signal.SIGKILL)  # no chance to stop anything
    serve.procs["serve"].reap()
    await eventually(
        lambda: not _alive(child), within=30, what=f"the orphaned pipeline process {child} to exit"
    )


def _run_serve(
    tmp_path: Path,
    http_listen: str = "127.0.0.1:0",
    grpc_listen: str = "127.0.0.1:0",
    data_dir: Path | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fnbox.cli",
            "serve",
            "--data-dir",
            str(data_dir or tmp_path / "data"),
            "--grpc-listen",
            grpc_listen,
            "--http-listen",
            http_listen,
        ],
        cwd=REPO,
        env=base_env({"FNBOX_EXECUTOR__WARM_WORKERS": "1", **env}),
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextlib.contextmanager
def _taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 that something listens on while the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def _failed_in_one_line(ran: subprocess.CompletedProcess[str], marker: str, cause: str) -> None:
    """serve exited non-zero with exactly one stderr line holding ``marker``, which names
    ``cause``, and no traceback."""
    assert ran.returncode != 0
    assert "Traceback" not in ran.stderr, ran.stderr
    errors = [line for line in ran.stderr.splitlines() if marker in line]
    assert len(errors) == 1 and cause in errors[0], ran.stderr


def test_port_in_use_fails_serve_with_one_line(tmp_path: Path) -> None:
    with _taken_port() as port:
        ran = _run_serve(tmp_path, f"127.0.0.1:{port}")
    _failed_in_one_line(ran, "failed to start", "address already in use")
    assert "http " not in ran.stdout


def test_grpc_port_in_use_fails_serve_with_one_line(tmp_path: Path) -> None:
    with _taken_port() as port:
        ran = _run_serve(tmp_path, grpc_listen=f"127.0.0.1:{port}")
    _failed_in_one_line(ran, "cannot listen for gRPC", "Address already in use")
    assert "grpc " not in ran.stdout


def test_unusable_data_dir_fails_serve_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a folder")
    ran = _run_serve(tmp_path, data_dir=tmp_path / "plain" / "d")
    _failed_in_one_line(ran, "ERROR", "Not a directory")


def test_bad_bus_url_fails_serve_with_one_line(tmp_path: Path) -> None:
    ran = _run_serve(tmp_path, FNBOX_BUS__URL="bogus://nowhere")
    _failed_in_one_line(ran, "failed to start", "bogus")


async def test_in_process_setting_runs_one_process(tmp_path: Path, sink: Sink) -> None:
    system = System(
        tmp_path / "data",
        base_env({"FNBOX_EXECUTOR__WARM_WORKERS": "1", "FNBOX_SERVE__PIPELINE_IN_PROCESS": "true"}),
    )
    await system.start()
    try:
        assert _pipeline_child(_serve_pid(system)) is None
        await _delivered(system, sink, "inline", 2)
    finally:
        system.stop()
