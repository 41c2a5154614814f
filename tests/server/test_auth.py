"""Tokens, roles and workspace isolation (WorkspaceService and every service's auth)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.server.auth import Authenticator, new_token
from fnbox.server.cache import ReadCache
from fnbox.server.errors import Unauthenticated
from fnbox.server.store.base import Role, WorkspaceRecord
from fnbox.server.store.sqlite import SqliteStore

from tests.conftest import RunningServer
from tests.server.helpers import Api, rpc_error

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EVENT = b'{"type":"track","event":"e"}'


async def _token(api: Api, role: pb.Role, parent: str = "") -> pb.Token:
    token: pb.Token = await api.workspaces.CreateToken(
        spb.CreateTokenRequest(parent=parent, role=role, description=f"role {role}"),
        metadata=api.metadata,
    )
    return token


async def test_a_known_header_is_its_principal_while_its_token_is_cached(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "registry.db")
    await store.open()
    try:
        record, secret = new_token("ws_a", Role.DEVELOPER, "t")
        await store.create_workspace(WorkspaceRecord("ws_a", "A", datetime.now(UTC)), record)
        other, other_secret = new_token("ws_a", Role.ADMIN, "u")
        await store.create_token(other)
        auth = Authenticator(store, ReadCache(store, ttl_s=3600))
        metadata = (("user-agent", "x"), ("authorization", f"Bearer {secret}"))
        assert auth.known(metadata) is None  # never authenticated
        principal = await auth.authenticate(metadata)
        assert (principal.workspace_id, principal.token_id) == ("ws_a", record.id)
        assert auth.known(metadata) is principal
        assert auth.known((("authorization", f"Bearer {other_secret}"),)) is None
        assert auth.known((("authorization", f"Bearer {secret}x"),)) is None
        assert auth.known(()) is None
        assert await store.delete_token("ws_a", record.id)
        assert auth.known(metadata) is None  # a write: the cached token is gone
        with pytest.raises(Unauthenticated):
            await auth.authenticate(metadata)
        assert auth.known(metadata) is None
    finally:
        await store.close()


async def test_missing_or_bad_token_is_unauthenticated(running_server: RunningServer) -> None:
    api = Api.of(running_server)
    request = spb.ListFunctionsRequest()
    await rpc_error(api.functions.ListFunctions(request), UNAUTHENTICATED, "MISSING_TOKEN")
    for header in ("Bearer nope", "Basic " + running_server.admin_token, "Bearer ", "token"):
        await rpc_error(
            api.functions.ListFunctions(request, metadata=(("authorization", header),)),
            UNAUTHENTICATED,
            "BAD_TOKEN",
        )
    stream = api.functions.InvokeStream(iter([ipb.InvokeFunctionRequest(target="fn_x")]))
    await rpc_error(stream.read(), UNAUTHENTICATED, "MISSING_TOKEN")
    batch = ipb.InvokeStreamBatchRequest(requests=[ipb.InvokeFunctionRequest(target="fn_x")])
    batches = api.functions.InvokeStreamBatch(iter([batch]))
    await rpc_error(batches.read(), UNAUTHENTICATED, "MISSING_TOKEN")
    assert await api.functions.ListFunctions(request, metadata=api.metadata) is not None


async def test_roles(running_server: RunningServer) -> None:
    admin = Api.of(running_server)
    fn = await admin.create_function()
    await admin.deploy(fn.name)
    instance = await admin.create_instance(fn.name)
    reader = Api.of(running_server, (await _token(admin, pb.ROLE_READ_ONLY)).secret)
    developer = Api.of(running_server, (await _token(admin, pb.ROLE_DEVELOPER)).secret)

    # Read-only: get and list only.
    got = await reader.functions.GetFunction(
        spb.GetFunctionRequest(name=fn.id), metadata=reader.metadata
    )
    assert got.id == fn.id
    await reader.instances.ListInstances(spb.ListInstancesRequest(), metadata=reader.metadata)
    await reader.functions.ListVersions(
        spb.ListVersionsRequest(parent=fn.id), metadata=reader.metadata
    )
    await reader.workspaces.GetWorkspace(spb.GetWorkspaceRequest(), metadata=reader.metadata)
    invoke = ipb.InvokeFunctionRequest(target=instance.id, event=EVENT)
    for call in (
        reader.create_function(),
        reader.deploy(fn.id),
        reader.functions.InvokeFunction(invoke, metadata=reader.metadata),
        reader.functions.RunFunction(
            ipb.RunFunctionRequest(type=pb.FUNCTION_TYPE_DESTINATION, code="x", event=EVENT),
            metadata=reader.metadata,
        ),
        reader.functions.InvokeStream(iter([invoke]), metadata=reader.metadata).read(),
        reader.functions.InvokeStreamBatch(
            iter([ipb.InvokeStreamBatchRequest(requests=[invoke])]), metadata=reader.metadata
        ).read(),
    ):
        info = await rpc_error(call, DENIED, "ROLE_TOO_LOW")
        assert info.metadata["required_role"] == "DEVELOPER"

    # Developer: + create, update, deploy, invoke; not deletes, not tokens.
    made = await developer.create_function("dev")
    await developer.deploy(made.id)
    result = await developer.functions.InvokeFunction(invoke, metadata=developer.metadata)
    assert result.outcome == ipb.OUTCOME_OK
    for call in (
        developer.functions.DeleteFunction(
            spb.DeleteFunctionRequest(name=made.id), metadata=developer.metadata
        ),
        developer.instances.DeleteInstance(
            spb.DeleteInstanceRequest(name=instance.id), metadata=developer.metadata
        ),
        developer.workspaces.ListTokens(spb.ListTokensRequest(), metadata=developer.metadata),
        developer.workspaces.CreateToken(
            spb.CreateTokenRequest(role=pb.ROLE_ADMIN), metadata=developer.metadata
        ),
    ):
        assert (await rpc_error(call, DENIED, "ROLE_TOO_LOW")).metadata["required_role"] == "ADMIN"
    # Only platform admins make workspaces.
    workspace_admin = Api.of(running_server, (await _token(admin, pb.ROLE_ADMIN)).secret)
    await rpc_error(
        workspace_admin.workspaces.CreateWorkspace(
            spb.CreateWorkspaceRequest(display_name="w"), metadata=workspace_admin.metadata
        ),
        DENIED,
        "PLATFORM_ADMIN_REQUIRED",
    )


async def test_tokens_are_shown_once_stored_hashed_and_revocable(
    running_server: RunningServer,
) -> None:
    admin = Api.of(running_server)
    token = await _token(admin, pb.ROLE_DEVELOPER)
    assert token.secret and token.name.endswith("/tokens/" + token.id)
    assert token.role == pb.ROLE_DEVELOPER
    listed = await admin.workspaces.ListTokens(spb.ListTokensRequest(), metadata=admin.metadata)
    assert token.id in {t.id for t in listed.tokens}
    assert all(not t.secret for t in listed.tokens) and len(listed.tokens) == 2
    with sqlite3.connect(running_server.data_dir / "registry.db") as conn:
        (stored,) = conn.execute(
            "SELECT secret_sha256 FROM tokens WHERE id = ?", (token.id,)
        ).fetchone()
    assert stored == hashlib.sha256(token.secret.encode()).hexdigest()
    files = sorted(running_server.data_dir.glob("registry.db*"))
    assert all(token.secret.encode() not in path.read_bytes() for path in files)

    user = Api.of(running_server, token.secret)
    await user.create_function()
    deleted = await admin.workspaces.DeleteToken(
        spb.DeleteTokenRequest(name=token.name), metadata=admin.metadata
    )
    assert deleted.status == "SUCCESS"
    await rpc_error(user.create_function(), UNAUTHENTICATED, "BAD_TOKEN")
    await rpc_error(
        admin.workspaces.DeleteToken(
            spb.DeleteTokenRequest(name=token.id), metadata=admin.metadata
        ),
        NOT_FOUND,
    )
    await rpc_error(
        admin.workspaces.CreateToken(spb.CreateTokenRequest(), metadata=admin.metadata),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ROLE_REQUIRED",
    )


async def test_workspaces_do_not_see_each_other(running_server: RunningServer) -> None:
    platform = Api.of(running_server)
    home = await platform.workspaces.GetWorkspace(
        spb.GetWorkspaceRequest(), metadata=platform.metadata
    )
    assert home.display_name == "Default" and home.name == f"workspaces/{home.id}"
    created = await platform.workspaces.CreateWorkspace(
        spb.CreateWorkspaceRequest(display_name="Other"), metadata=platform.metadata
    )
    assert created.workspace.display_name == "Other" and created.admin_token.secret
    other = Api.of(running_server, created.admin_token.secret)
    mine = await other.workspaces.GetWorkspace(spb.GetWorkspaceRequest(), metadata=other.metadata)
    assert mine.id == created.workspace.id

    fn = await platform.create_function("home fn")
    await platform.deploy(fn.name)
    instance = await platform.create_instance(fn.name)
    theirs = await other.create_function("their fn")
    assert theirs.name.startswith(created.workspace.name + "/")

    # Another workspace's resources are NOT_FOUND, by name or by short id, whatever the call.
    for ref in (fn.name, fn.id):
        await rpc_error(
            other.functions.GetFunction(spb.GetFunctionRequest(name=ref), metadata=other.metadata),
            NOT_FOUND,
            "FUNCTION_NOT_FOUND",
        )
    for call in (
        other.instances.GetInstance(
            spb.GetInstanceRequest(name=instance.id), metadata=other.metadata
        ),
        other.functions.InvokeFunction(
            ipb.InvokeFunctionRequest(target=instance.name, event=EVENT), metadata=other.metadata
        ),
        other.functions.InvokeFunction(
            ipb.InvokeFunctionRequest(target=fn.id, event=EVENT), metadata=other.metadata
        ),
        other.functions.ListVersions(
            spb.ListVersionsRequest(parent=fn.id), metadata=other.metadata
        ),
        other.functions.DeleteFunction(
            spb.DeleteFunctionRequest(name=fn.id, force=True), metadata=other.metadata
        ),
        other.functions.ListFunctions(
            spb.ListFunctionsRequest(parent=home.name), metadata=other.metadata
        ),
        other.create_function(parent=home.name),
        other.create_instance(fn.name),
        other.workspaces.ListTokens(
            spb.ListTokensRequest(parent=home.name), metadata=other.metadata
        ),
    ):
        await rpc_error(call, NOT_FOUND)
    # A name that puts a resource in the wrong workspace is not found either.
    wrong = f"{created.workspace.name}/functions/{fn.id}"
    await rpc_error(
        platform.functions.GetFunction(
            spb.GetFunctionRequest(name=wrong), metadata=platform.metadata
        ),
        NOT_FOUND,
    )
    listed = await other.functions.ListFunctions(
        spb.ListFunctionsRequest(), metadata=other.metadata
    )
    assert [f.id for f in listed.functions] == [theirs.id]
    # The platform admin may act in any workspace.
    got = await platform.functions.GetFunction(
        spb.GetFunctionRequest(name=theirs.id), metadata=platform.metadata
    )
    assert got.id == theirs.id
    there = await platform.functions.ListFunctions(
        spb.ListFunctionsRequest(parent=created.workspace.name), metadata=platform.metadata
    )
    assert [f.id for f in there.functions] == [theirs.id]
