"""State left behind: globals of one function read by another, by another workspace running
the same code, by another version; and the per-function limits (validated against the
executor's maxima, applied on the next call after an update).

Globals are per function *version*, as in Segment (a warm container serves every instance
of a version): two instances of one version, with different settings, share module state.
That is documented (docs/security.md), and the test below pins it down.
"""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import grpc
import orjson
import pytest
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc
from google.protobuf import field_mask_pb2

from tests.security.helpers import Server, error_reason, outcome

pytestmark = pytest.mark.asyncio(loop_scope="session")

WRITER = """
var leaked = 'module secret';
async function onTrack(event, settings) {
  globalThis.secret = settings.apiKey || 'global secret';
  Object.prototype.polluted = 'yes';
  console.log('wrote');
}"""
READER = """
async function onTrack(event, settings) {
  console.log(JSON.stringify([typeof leaked, String(globalThis.secret), String(({}).polluted)]));
}"""


async def test_globals_of_one_function_are_invisible_to_another(server: Server) -> None:
    writer = await server.create(WRITER)
    reader = await server.create(READER)
    wrote = await server.attack(server.invoke(writer.name, settings={"apiKey": "k-123"}))
    assert list(wrote.logs) == ["wrote"]
    read = await server.invoke(reader.name)
    assert orjson.loads(read.logs[0]) == ["undefined", "undefined", "undefined"]


async def test_globals_are_per_version_not_per_instance(server: Server) -> None:
    code = """
async function onTrack(event, settings) {
  const before = globalThis.lastKey;
  globalThis.lastKey = settings.apiKey;
  console.log(String(before));
}"""
    schema = [pb.SettingDefinition(name="apiKey", label="apiKey", type=pb.SETTING_TYPE_STRING)]
    created = await server.functions.CreateFunction(
        spb.CreateFunctionRequest(
            function=pb.Function(
                display_name="shared",
                type=pb.FUNCTION_TYPE_DESTINATION,
                code=code,
                settings_schema=schema,
            )
        ),
        metadata=server.metadata,
    )
    await server.functions.DeployFunction(
        spb.DeployFunctionRequest(name=created.name), metadata=server.metadata
    )
    instances = service_pb2_grpc.InstanceServiceStub(server.channel)
    names = []
    for key in ("key-A", "key-B"):
        instance = await instances.CreateInstance(
            spb.CreateInstanceRequest(
                instance=pb.Instance(
                    display_name=key, function=created.name, settings=orjson.dumps({"apiKey": key})
                )
            ),
            metadata=server.metadata,
        )
        names.append(instance.name)
    first = await server.attack(server.invoke(names[0]))
    second = await server.invoke(names[1])
    assert list(first.logs) == ["undefined"]
    assert list(second.logs) == ["key-A"]  # same version, same worker: documented behaviour
    # A new version starts from a fresh context (and a fresh worker).
    updated = pb.Function(name=created.name, code=code + "\n// v2\n")
    await server.functions.UpdateFunction(
        spb.UpdateFunctionRequest(
            function=updated, update_mask=field_mask_pb2.FieldMask(paths=["code"])
        ),
        metadata=server.metadata,
    )
    await server.functions.DeployFunction(
        spb.DeployFunctionRequest(name=created.name), metadata=server.metadata
    )
    third = await server.invoke(names[0])
    assert list(third.logs) == ["undefined"]


async def test_same_code_in_another_workspace_shares_nothing(server: Server) -> None:
    workspaces = service_pb2_grpc.WorkspaceServiceStub(server.channel)
    other = await workspaces.CreateWorkspace(
        spb.CreateWorkspaceRequest(display_name="tenant-b"), metadata=server.metadata
    )
    other_metadata = (("authorization", f"Bearer {other.admin_token.secret}"),)
    code = """
async function onTrack(event, settings) {
  console.log(String(globalThis.tenantSecret));
  globalThis.tenantSecret = settings.secret;
}"""
    mine = await server.attack(server.run(code, settings={"secret": "tenant-a"}))
    again = await server.run(code, settings={"secret": "tenant-a"})
    theirs = await server.functions.RunFunction(
        ipb.RunFunctionRequest(
            type=pb.FUNCTION_TYPE_DESTINATION, code=code, event=b'{"type":"track","event":"e"}'
        ),
        metadata=other_metadata,
    )
    assert list(mine.logs) == ["undefined"]
    assert list(again.logs) == ["tenant-a"]  # the same workspace's warm worker
    assert list(theirs.logs) == ["undefined"]  # never the other tenant's worker


async def test_limits_above_the_maxima_are_refused(server: Server) -> None:
    executor = server.service.settings.executor
    for limits in (
        pb.FunctionLimits(timeout_ms=executor.max_timeout_ms + 1),
        pb.FunctionLimits(memory_mib=executor.max_memory_mib + 1),
        pb.FunctionLimits(timeout_ms=-1),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.attack(server.create(READER, limits=limits))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(caught.value) == "INVALID_LIMITS"


async def test_a_limit_update_applies_to_the_next_call(server: Server) -> None:
    code = "async function onTrack(event) { const t = Date.now(); while (Date.now() - t < 700) {} console.log('done'); }"
    created = await server.create(code, limits=pb.FunctionLimits(timeout_ms=3000))
    assert outcome(await server.attack(server.invoke(created.name))) == "OK"
    tighter = pb.Function(
        name=created.name, limits=pb.FunctionLimits(timeout_ms=300, no_network=True)
    )
    updated = await server.functions.UpdateFunction(
        spb.UpdateFunctionRequest(
            function=tighter, update_mask=field_mask_pb2.FieldMask(paths=["limits"])
        ),
        metadata=server.metadata,
    )
    assert updated.limits.timeout_ms == 300 and updated.limits.no_network
    fetched = await server.functions.GetFunction(
        spb.GetFunctionRequest(name=created.name), metadata=server.metadata
    )
    assert fetched.limits == updated.limits
    assert outcome(await server.invoke(created.name)) == "TIMEOUT"
