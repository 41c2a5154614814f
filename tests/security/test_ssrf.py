"""Server-side request forgery through fetch(): loopback in every spelling and through a
redirect, the dispatcher swapped from user code, and the address policy itself.

Packets only ever go to this machine: the loopback targets have a listener that must see no
connection; private, link-local and metadata ranges are checked against the policy function
(node harness) only, never fetched from a worker that has a route out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.runtime.conftest import Runtime
from tests.security.helpers import HttpStub, Listener, Server, outcome

pytestmark = pytest.mark.asyncio(loop_scope="session")
# 127.0.0.2 is allowed so that a redirect from an allowed host can be tested on this machine.
EXECUTOR = {"egress_allow": ["127.0.0.2/32"]}

FETCH = """
async function onTrack(event, settings) {
  try {
    const r = await fetch(settings.url, settings.init || {});
    console.log('status ' + r.status);
  } catch (err) {
    console.log('refused ' + (err.cause ? err.cause.message : err.message));
  }
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def listener() -> AsyncIterator[Listener]:
    opened = await Listener.open()
    yield opened
    await opened.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def allowed() -> AsyncIterator[HttpStub]:
    stub = await HttpStub.open("127.0.0.2")
    yield stub
    await stub.close()


async def fetch_log(server: Server, url: str, init: dict[str, Any] | None = None) -> str:
    result = await server.attack(server.run(FETCH, settings={"url": url, "init": init or {}}))
    assert outcome(result) == "OK", result.error
    return str(result.logs[0])


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0x7f000001",
        "2130706433",
        "127.1",
        "[::ffff:127.0.0.1]",
        "0.0.0.0",
    ],
)
async def test_loopback_is_refused_in_every_spelling(
    server: Server, listener: Listener, host: str
) -> None:
    before = listener.connections
    log = await fetch_log(server, f"http://{host}:{listener.port}/admin")
    assert log.startswith("refused") and "EGRESS_DENIED" in log, log
    assert listener.connections == before


async def test_redirect_from_an_allowed_host_to_loopback_is_refused(
    server: Server, listener: Listener, allowed: HttpStub
) -> None:
    before, hops = listener.connections, len(allowed.requests)
    target = f"http://127.0.0.1:{listener.port}/admin"
    log = await fetch_log(server, f"http://127.0.0.2:{allowed.port}/redirect?to={target}")
    assert log.startswith("refused") and "EGRESS_DENIED" in log, log
    assert len(allowed.requests) == hops + 1  # the allowed hop was made, the next one not
    assert listener.connections == before
    manual = await fetch_log(
        server, f"http://127.0.0.2:{allowed.port}/redirect?to={target}", {"redirect": "manual"}
    )
    assert manual == "status 302"
    assert listener.connections == before


async def test_allowed_destination_is_reachable(server: Server, allowed: HttpStub) -> None:
    # The control for the refusals above: the same fetch path works where policy allows it.
    log = await fetch_log(server, f"http://127.0.0.2:{allowed.port}/ok")
    assert log == "status 200"


async def test_user_code_cannot_swap_the_dispatcher(server: Server, listener: Listener) -> None:
    code = """
async function onTrack(event, settings) {
  const sym = Symbol.for('undici.globalDispatcher.1');
  const fake = { dispatch() { throw new Error('fake dispatcher used'); } };
  globalThis[sym] = fake;
  const out = [];
  for (const init of [{}, { dispatcher: fake }, { dispatcher: null }]) {
    try { const r = await fetch(settings.url, init); out.push('status ' + r.status); }
    catch (err) { out.push('refused ' + (err.cause ? err.cause.message : err.message)); }
  }
  console.log(JSON.stringify(out));
}"""
    before = listener.connections
    url = f"http://127.0.0.1:{listener.port}/"
    result = await server.attack(server.run(code, settings={"url": url}))
    assert outcome(result) == "OK", result.error
    assert result.logs[0].count("EGRESS_DENIED") == 3, result.logs[0]
    assert listener.connections == before


async def test_address_policy_refuses_private_link_local_and_metadata_ranges(
    server: Server,
) -> None:
    denied = [
        "169.254.169.254",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "192.168.255.255",
        "100.64.0.1",
        "127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "[::ffff:10.0.0.1]",
        "fd00::1",
        "fe80::1",
        "fd00:ec2::254",
        "64:ff9b::a9fe:a9fe",
    ]
    allowed = ["8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700:4700::1111"]

    def check() -> tuple[list[bool], list[bool]]:
        runtime = Runtime()
        try:
            default = runtime.call("policy", addresses=denied + allowed)["denied"]
            opened = runtime.call(
                "policy",
                addresses=["10.1.2.3", "10.1.2.3"[:-1] + "4", "11.0.0.1"],
                allow=["10.1.2.3/32"],
            )["denied"]
        finally:
            runtime.close()
        return default, opened

    default, opened = await server.attack(asyncio.to_thread(check))
    assert default == [True] * len(denied) + [False] * len(allowed), dict(
        zip(denied + allowed, default, strict=True)
    )
    assert opened == [False, True, False]  # egress_allow opens exactly the listed range
