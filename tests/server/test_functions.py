"""FunctionService CRUD, versions, deploy and restore against a real control service."""

from __future__ import annotations

import grpc
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from google.protobuf import field_mask_pb2

from tests.conftest import RunningServer
from tests.server.helpers import DESTINATION_CODE, Api, rpc_error, setting

INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def test_create_then_get_by_name_and_short_id(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    schema = [
        setting("apiKey", sensitive=True, required=True),
        setting("tags", pb.SETTING_TYPE_ARRAY),
    ]
    created = await api.create_function("My fn", code=DESTINATION_CODE, schema=schema)
    assert created.name.startswith("workspaces/ws_") and created.name.endswith(
        "/functions/" + created.id
    )
    assert created.id.startswith("fn_")
    assert (created.latest_version, created.deployed_version) == (1, 0)
    assert created.batch.max_count == 20 and created.batch.max_wait_ms == 10_000
    for ref in (created.name, created.id):
        got = await api.functions.GetFunction(
            spb.GetFunctionRequest(name=ref), metadata=api.metadata
        )
        assert got == created
    assert [s.name for s in created.settings_schema] == ["apiKey", "tags"]
    assert created.settings_schema[0].sensitive and created.settings_schema[0].required


async def test_create_rejects_bad_fields(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    cases = [
        ({"name": ""}, "DISPLAY_NAME_REQUIRED"),
        ({"name": "x" * 121}, "DISPLAY_NAME_TOO_LONG"),
        ({"type": pb.FUNCTION_TYPE_UNSPECIFIED}, "TYPE_REQUIRED"),
        ({"code": "  "}, "CODE_REQUIRED"),
        ({"schema": [setting("API key")]}, "INVALID_SETTING_NAME"),
        ({"schema": [setting("Key")]}, "INVALID_SETTING_NAME"),
        ({"schema": [setting("key"), setting("key")]}, "DUPLICATE_SETTING"),
        ({"schema": [setting("key", pb.SETTING_TYPE_UNSPECIFIED)]}, "INVALID_SETTING_TYPE"),
    ]
    for fields, reason in cases:
        await rpc_error(api.create_function(**fields), INVALID, reason)  # type: ignore[arg-type]
    assert await api.create_function("x" * 120)  # the limit itself is fine
    listed = await api.functions.ListFunctions(spb.ListFunctionsRequest(), metadata=api.metadata)
    assert listed.total_size == 1


async def test_syntax_error_names_line_and_column(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    code = "async function onTrack(event) {\n  const x = ;\n}\n"
    info = await rpc_error(api.create_function(code=code), INVALID, "SYNTAX_ERROR")
    assert info.metadata["line"] == "2"
    column = int(info.metadata["column"])
    assert column >= 1
    try:
        await api.create_function(code=code)
    except grpc.aio.AioRpcError as error:
        assert f"line 2, column {column}" in (error.details() or "")
    listed = await api.functions.ListFunctions(spb.ListFunctionsRequest(), metadata=api.metadata)
    assert listed.total_size == 0


async def test_request_id_makes_create_idempotent(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    first = await api.create_function("a", request_id="req-1")
    again = await api.create_function("a", request_id="req-1")
    other = await api.create_function("a", request_id="req-2")
    assert again == first and other.id != first.id
    listed = await api.functions.ListFunctions(spb.ListFunctionsRequest(), metadata=api.metadata)
    assert listed.total_size == 2


async def test_list_paginates_and_filters(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    made = [await api.create_function(f"d{i}") for i in range(5)]
    source = await api.create_function(
        "s", type=pb.FUNCTION_TYPE_SOURCE, code="async function onRequest() {}"
    )
    seen: list[str] = []
    token = ""
    tokens: list[str] = []
    pages = 0
    while True:
        page = await api.functions.ListFunctions(
            spb.ListFunctionsRequest(page_size=2, page_token=token), metadata=api.metadata
        )
        pages += 1
        assert page.total_size == 6 and len(page.functions) <= 2
        seen += [f.id for f in page.functions]
        token = page.next_page_token
        if not token:
            break
        tokens.append(token)
    assert pages == 3 and seen == [f.id for f in made] + [source.id]
    only = await api.functions.ListFunctions(
        spb.ListFunctionsRequest(type=pb.FUNCTION_TYPE_SOURCE), metadata=api.metadata
    )
    assert [f.id for f in only.functions] == [source.id] and only.total_size == 1
    default = await api.functions.ListFunctions(spb.ListFunctionsRequest(), metadata=api.metadata)
    assert len(default.functions) == 6 and not default.next_page_token
    await rpc_error(
        api.functions.ListFunctions(
            spb.ListFunctionsRequest(page_token="garbage"), metadata=api.metadata
        ),
        INVALID,
        "INVALID_PAGE_TOKEN",
    )
    # A token of another listing is refused too.
    await rpc_error(
        api.functions.ListFunctions(
            spb.ListFunctionsRequest(type=pb.FUNCTION_TYPE_SOURCE, page_token=tokens[0]),
            metadata=api.metadata,
        ),
        INVALID,
        "INVALID_PAGE_TOKEN",
    )


async def test_update_honours_the_field_mask(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function("before")

    async def update(function: pb.Function, *paths: str) -> pb.Function:
        request = spb.UpdateFunctionRequest(
            function=function, update_mask=field_mask_pb2.FieldMask(paths=list(paths))
        )
        result: pb.Function = await api.functions.UpdateFunction(request, metadata=api.metadata)
        return result

    new_code = DESTINATION_CODE + "\n// v2\n"
    renamed = await update(
        pb.Function(name=fn.name, display_name="after", code=new_code), "display_name"
    )
    assert (
        renamed.display_name == "after" and renamed.code == fn.code and renamed.latest_version == 1
    )

    saved = await update(pb.Function(name=fn.id, code=new_code), "code")
    assert saved.code == new_code and saved.latest_version == 2 and saved.display_name == "after"

    same = await update(pb.Function(name=fn.id, code=new_code), "code")
    assert same.latest_version == 2  # nothing changed, no new version

    schema = await update(
        pb.Function(name=fn.id, settings_schema=[setting("k")]), "settings_schema"
    )
    assert schema.latest_version == 3 and [s.name for s in schema.settings_schema] == ["k"]

    # Empty mask: every field that is set.
    both = await update(
        pb.Function(name=fn.id, display_name="both", batch=pb.BatchOptions(max_count=50))
    )
    assert both.display_name == "both" and both.batch.max_count == 50 and both.latest_version == 3

    await rpc_error(
        update(pb.Function(name=fn.id, display_name="x"), "type"), INVALID, "INVALID_UPDATE_MASK"
    )
    await rpc_error(
        update(pb.Function(name=fn.id, code="function ("), "code"), INVALID, "SYNTAX_ERROR"
    )
    await rpc_error(update(pb.Function(name=fn.id, display_name=""), "display_name"), INVALID)
    await rpc_error(
        update(pb.Function(name=fn.id, limits=pb.FunctionLimits(timeout_ms=10**9)), "limits"),
        INVALID,
        "INVALID_LIMITS",
    )
    got = await api.functions.GetFunction(spb.GetFunctionRequest(name=fn.id), metadata=api.metadata)
    assert got.latest_version == 3 and got.display_name == "both"
    await rpc_error(
        update(pb.Function(name=fn.id.replace("fn_", "fn_zz"), display_name="x"), "display_name"),
        grpc.StatusCode.NOT_FOUND,
        "FUNCTION_NOT_FOUND",
    )


async def test_versions_deploy_and_restore(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function()
    codes = [fn.code]
    for i in (2, 3):
        code = DESTINATION_CODE + f"\n// v{i}\n"
        codes.append(code)
        await api.functions.UpdateFunction(
            spb.UpdateFunctionRequest(function=pb.Function(name=fn.name, code=code)),
            metadata=api.metadata,
        )

    async def versions() -> list[pb.Version]:
        response = await api.functions.ListVersions(
            spb.ListVersionsRequest(parent=fn.name), metadata=api.metadata
        )
        return list(response.versions)

    listed = await versions()
    assert [v.version for v in listed] == [3, 2, 1]
    assert [v.latest for v in listed] == [True, False, False] and not any(
        v.deployed for v in listed
    )
    assert [v.code for v in reversed(listed)] == codes
    assert listed[0].name == f"{fn.name}/versions/3" and listed[0].author.endswith(
        "/tokens/" + listed[0].author.rsplit("/", 1)[-1]
    )

    page = await api.functions.ListVersions(
        spb.ListVersionsRequest(parent=fn.id, page_size=2), metadata=api.metadata
    )
    rest = await api.functions.ListVersions(
        spb.ListVersionsRequest(parent=fn.id, page_size=2, page_token=page.next_page_token),
        metadata=api.metadata,
    )
    assert [v.version for v in page.versions] == [3, 2] and [v.version for v in rest.versions] == [
        1
    ]
    assert not rest.next_page_token

    deployed = await api.deploy(fn.name, 2)
    assert deployed.deployed_version == 2 and deployed.deploy_time.seconds > 0
    assert [(v.version, v.deployed) for v in await versions()] == [
        (3, False),
        (2, True),
        (1, False),
    ]
    latest = await api.deploy(fn.id)
    assert latest.deployed_version == 3
    await rpc_error(api.deploy(fn.id, 9), grpc.StatusCode.NOT_FOUND, "VERSION_NOT_FOUND")

    restored: pb.Version = await api.functions.RestoreVersion(
        spb.RestoreVersionRequest(name=fn.name, version=1), metadata=api.metadata
    )
    assert restored.version == 4 and restored.code == codes[0]
    assert restored.latest and not restored.deployed
    after = await api.functions.GetFunction(
        spb.GetFunctionRequest(name=fn.id), metadata=api.metadata
    )
    assert (after.latest_version, after.deployed_version, after.code) == (4, 3, codes[0])
    await rpc_error(
        api.functions.RestoreVersion(
            spb.RestoreVersionRequest(name=fn.name, version=7), metadata=api.metadata
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await rpc_error(
        api.functions.RestoreVersion(
            spb.RestoreVersionRequest(name=fn.name), metadata=api.metadata
        ),
        INVALID,
        "VERSION_REQUIRED",
    )


async def test_delete_needs_force_when_instances_exist(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    fn = await api.create_function()
    instance = await api.create_instance(fn.name)
    await rpc_error(
        api.functions.DeleteFunction(spb.DeleteFunctionRequest(name=fn.id), metadata=api.metadata),
        grpc.StatusCode.FAILED_PRECONDITION,
        "FUNCTION_HAS_INSTANCES",
    )
    deleted = await api.functions.DeleteFunction(
        spb.DeleteFunctionRequest(name=fn.name, force=True), metadata=api.metadata
    )
    assert deleted.status == "SUCCESS"
    for call in (
        api.functions.GetFunction(spb.GetFunctionRequest(name=fn.id), metadata=api.metadata),
        api.instances.GetInstance(spb.GetInstanceRequest(name=instance.id), metadata=api.metadata),
        api.functions.DeleteFunction(spb.DeleteFunctionRequest(name=fn.id), metadata=api.metadata),
    ):
        await rpc_error(call, grpc.StatusCode.NOT_FOUND)
    plain = await api.create_function()
    assert (
        await api.functions.DeleteFunction(
            spb.DeleteFunctionRequest(name=plain.id), metadata=api.metadata
        )
    ).status == "SUCCESS"


async def test_malformed_names_are_invalid(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    for name in ("", "nope", "workspaces/ws_a/instances/in_b", "fn_x/../y"):
        await rpc_error(
            api.functions.GetFunction(spb.GetFunctionRequest(name=name), metadata=api.metadata),
            INVALID,
            "INVALID_NAME",
        )
