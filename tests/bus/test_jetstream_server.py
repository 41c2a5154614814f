"""The JetStream bus against a private nats-server that the test kills and restarts: the
client reconnects by itself and what the server acknowledged survives ``kill -9`` of it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fnbox.bus import BusUnavailable, open_bus

from tests.bus.helpers import take
from tests.support.polling import eventually


class PrivateNats:
    """One nats-server with JetStream on a free port, storing under ``store``."""

    def __init__(self, binary: str, store: Path) -> None:
        self.binary = binary
        self.store = store
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        command = [
            self.binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store),
        ]
        self.process = await asyncio.to_thread(
            subprocess.Popen, command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        await eventually(self._accepts, within=10)

    async def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(self.process.wait)
            self.process = None

    async def _accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[PrivateNats]:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    binary = shutil.which("nats-server", path=search)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nats-server is required under CI")
        pytest.skip("no nats-server binary to start a private server")
    server = PrivateNats(binary, tmp_path / "jetstream")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


async def test_the_bus_reconnects_and_keeps_what_the_killed_server_acked(
    private_nats: PrivateNats,
) -> None:
    async with open_bus(f"{private_nats.url}?request_timeout=1", namespace="rc") as bus:
        before = await bus.publish("events.rc", b"before", dedup_id="one")
        await private_nats.kill()
        with pytest.raises(BusUnavailable):
            await bus.publish("events.rc", b"while down")
        await private_nats.start()
        after: list[str] = []

        async def published() -> bool:
            try:
                after.append(await bus.publish("events.rc", b"after", dedup_id="two"))
            except BusUnavailable:
                return False
            return True

        await eventually(published, within=20, every=0.2)
        # The publish that failed may still have gone out from the client's reconnect buffer
        # (the contract: a failed publish may or may not be stored).
        total = await bus.pending("events.rc", "g")
        got = await take(bus, "events.rc", "g", total, within=20)
        stored = [(d.message.id, d.message.data) for d in got]
        assert stored[0] == (before, b"before")
        assert stored[-1] == (after[0], b"after")
        assert {data for _, data in stored[1:-1]} <= {b"while down"}
