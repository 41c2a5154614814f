"""Per-function "no network" (FunctionLimits.no_network): the function's workers run in an
empty network namespace where the host allows it, and their fetch() is refused in any case.

Private and metadata addresses are fetched here only from a worker proven to sit in its own
network namespace (no interface up, so no route out) and whose fetch is refused anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fnbox.executor.settings import default_node_path
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from google.protobuf.field_mask_pb2 import FieldMask

from tests.security.helpers import HttpStub, Listener, Server, outcome, own_netns, worker_netns

pytestmark = pytest.mark.asyncio(loop_scope="session")
EXECUTOR = {"egress_allow": ["127.0.0.2/32"]}

FETCH = """
async function onTrack(event, settings) {
  for (const url of settings.urls) {
    try { const r = await fetch(url); console.log('status ' + r.status); }
    catch (err) { console.log('refused ' + (err.cause ? err.cause.message : err.message)); }
  }
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def allowed() -> AsyncIterator[HttpStub]:
    stub = await HttpStub.open("127.0.0.2")
    yield stub
    await stub.close()


def isolated_workers() -> set[int]:
    mine = own_netns()
    return {pid for pid, ns in worker_netns().items() if ns != mine}


async def test_no_network_function_reaches_nothing(server: Server, allowed: HttpStub) -> None:
    urls = {"urls": [f"http://127.0.0.2:{allowed.port}/ok"]}
    control = await server.run(FETCH, settings=urls)
    assert list(control.logs) == ["status 200"]  # reachable with the network on
    seen = len(allowed.requests)
    before = isolated_workers()
    result = await server.attack(server.run(FETCH, settings=urls, no_network=True))
    assert outcome(result) == "OK", result.error
    assert result.logs[0].startswith("refused") and "EGRESS_DENIED" in result.logs[0]
    assert len(allowed.requests) == seen
    if server.service.pool.host.netns:
        assert isolated_workers() - before, "the no-network worker is not in its own netns"


async def test_metadata_and_private_addresses_from_inside_the_namespace(
    server: Server,
) -> None:
    if not server.service.pool.host.netns:
        pytest.skip("this host does not allow network namespaces")
    code = FETCH + "\n// metadata probe\n"
    before = isolated_workers()
    warm = await server.run(code, settings={"urls": []}, no_network=True)
    assert outcome(warm) == "OK"
    # The function's worker is up, and it is in its own namespace: only then fetch.
    assert isolated_workers() - before
    urls = [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.0.1/",
        "http://172.16.0.1/",
    ]
    result = await server.attack(server.run(code, settings={"urls": urls}, no_network=True))
    assert outcome(result) == "OK", result.error
    assert len(result.logs) == 4 and all(line.startswith("refused") for line in result.logs)


async def test_the_namespace_holds_even_without_the_runtime_guard(server: Server) -> None:
    # Bypass the JS runtime entirely: a raw TCP connect from node inside the namespace the
    # executor uses for no-network workers, aimed at a loopback listener.
    host = server.service.pool.host
    if not host.netns:
        pytest.skip("this host does not allow network namespaces")
    listener = await Listener.open(("127.0.0.1",))
    script = (
        f"const s = require('net').connect({listener.port}, '127.0.0.1');"
        "s.on('connect', () => { console.log('connected'); process.exit(0); });"
        "s.on('error', (e) => { console.log(e.code); process.exit(0); });"
    )

    async def connect() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            *host.netns_prefix(),
            str(default_node_path()),
            "-e",
            script,
            stdout=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
        )
        out, _ = await proc.communicate()
        return out

    try:
        out = await server.attack(connect())
    finally:
        await listener.close()
    assert out.strip() in {b"ENETUNREACH", b"ECONNREFUSED"}, out
    assert listener.connections == 0


async def test_turning_the_network_off_applies_to_the_next_call(
    server: Server, allowed: HttpStub
) -> None:
    created = await server.create(FETCH)
    urls = {"urls": [f"http://127.0.0.2:{allowed.port}/ok"]}
    assert list((await server.invoke(created.name, settings=urls)).logs) == ["status 200"]
    for no_network, expected in ((True, "EGRESS_DENIED"), (False, "status 200")):
        change = pb.Function(name=created.name, limits=pb.FunctionLimits(no_network=no_network))
        updated = await server.functions.UpdateFunction(
            spb.UpdateFunctionRequest(function=change, update_mask=FieldMask(paths=["limits"])),
            metadata=server.metadata,
        )
        assert updated.limits.no_network is no_network
        # The warm worker of the old setting must not serve the new one.
        result = await server.attack(server.invoke(created.name, settings=urls))
        assert expected in result.logs[0], result.logs
