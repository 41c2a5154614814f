"""`serve()` / `control()` as real processes: endpoint lines, bootstrap token, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc

PROGRAM = (
    "import sys, fnbox.server.main as m; "
    "sys.exit(m.{entry}(data_dir=sys.argv[1], grpc_listen='127.0.0.1:0', "
    "http_listen='127.0.0.1:0'))"
)


def _start(entry: str, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "FNBOX_EXECUTOR__WARM_WORKERS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM.format(entry=entry), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the service listens (or exits)
    if not line:
        process.wait(timeout=30)
        errors = process.stderr.read() if process.stderr else ""
        pytest.fail(f"{entry} exited {process.returncode}: {errors}")
    kind, address = line.split()
    assert kind == "grpc" and address.startswith("127.0.0.1:")
    return process, address


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stdout, stderr


async def _workspace(address: str, token: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = service_pb2_grpc.WorkspaceServiceStub(channel)
        reply = await stub.GetWorkspace(
            spb.GetWorkspaceRequest(), metadata=(("authorization", f"Bearer {token}"),)
        )
        return str(reply.id)


@pytest.mark.parametrize("entry", ["control", "serve"])
async def test_bootstrap_once_then_restart(tmp_path: Path, entry: str) -> None:
    data_dir = tmp_path / "data"
    process, address = _start(entry, data_dir)
    try:
        token_file = data_dir / "admin.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        workspace = await _workspace(address, token)
    finally:
        stdout, stderr = _stop(process)
    assert token not in stdout + stderr  # never logged
    assert (data_dir / "registry.db").exists()

    process, address = _start(entry, data_dir)
    try:
        assert token_file.read_text().strip() == token  # never overwritten
        assert await _workspace(address, token) == workspace  # no second bootstrap
    finally:
        _stop(process)
