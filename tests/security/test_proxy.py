"""FNBOX_EXECUTOR__EGRESS_PROXY: every outbound request of a function goes through the
operator's HTTP proxy, which owns the policy for host names; IP literals the policy refuses
are still refused in the worker and never reach the proxy.

The proxy here is a stub on 127.0.0.1 that answers every request itself and never connects
anywhere, so nothing leaves this machine whatever the function asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.security.conftest import BASE_EXECUTOR
from tests.security.helpers import Listener, Server, outcome

pytestmark = pytest.mark.asyncio(loop_scope="session")

FETCH = """
async function onTrack(event, settings) {
  try {
    const r = await fetch(settings.url);
    console.log('status ' + r.status + ' ' + (await r.text()));
  } catch (err) {
    console.log('refused ' + (err.cause ? err.cause.message : err.message));
  }
}"""


class ProxyStub:
    """Records what it is asked for (CONNECT targets or absolute URLs) and answers itself."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            self.asked.append(f"{method} {target}")
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await reader.readuntil(b"\r\n\r\n")  # the tunnelled request: answer it here
            body = b"via proxy"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ConnectionError):
                writer.close()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def proxy() -> AsyncIterator[ProxyStub]:
    stub = ProxyStub()
    await stub.open()
    yield stub
    await stub.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(
    proxy: ProxyStub, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    executor = BASE_EXECUTOR | {"egress_proxy": f"http://127.0.0.1:{proxy.port}"}
    started = await Server.start(tmp_path_factory.mktemp("proxy"), **executor)
    try:
        yield started
    finally:
        await started.stop()


async def test_requests_go_through_the_proxy(server: Server, proxy: ProxyStub) -> None:
    result = await server.attack(
        server.run(FETCH, settings={"url": "http://api.example.invalid/v1/track"})
    )
    assert outcome(result) == "OK", result.error
    assert list(result.logs) == ["status 200 via proxy"]
    assert proxy.asked[-1] in {
        "CONNECT api.example.invalid:80",
        "GET http://api.example.invalid/v1/track",
    }


async def test_refused_ip_literals_never_reach_the_proxy(server: Server, proxy: ProxyStub) -> None:
    listener = await Listener.open()
    asked = len(proxy.asked)
    try:
        for host in ("127.0.0.1", "[::1]", "0x7f000001"):
            url = f"http://{host}:{listener.port}/"
            result = await server.attack(server.run(FETCH, settings={"url": url}))
            assert "EGRESS_DENIED" in result.logs[0], (host, result.logs)
    finally:
        await listener.close()
    assert len(proxy.asked) == asked
    assert listener.connections == 0
