"""GetWorkspace by name: a platform admin reads any workspace (the pipeline needs display names
for Segment's integrations keys); anyone else only their own."""

from __future__ import annotations

import grpc
from fnbox.functions.v1 import service_pb2 as spb

from tests.conftest import RunningServer
from tests.server.helpers import Api, rpc_error


async def test_get_workspace_by_name(running_server: RunningServer) -> None:
    platform = Api.of(running_server)
    home = await platform.workspaces.GetWorkspace(
        spb.GetWorkspaceRequest(), metadata=platform.metadata
    )
    created = await platform.workspaces.CreateWorkspace(
        spb.CreateWorkspaceRequest(display_name="Acme Corp"), metadata=platform.metadata
    )
    named = spb.GetWorkspaceRequest(name=created.workspace.name)
    found = await platform.workspaces.GetWorkspace(named, metadata=platform.metadata)
    assert (found.name, found.display_name) == (created.workspace.name, "Acme Corp")

    other = Api.of(running_server, created.admin_token.secret)
    own = await other.workspaces.GetWorkspace(named, metadata=other.metadata)
    assert own.id == created.workspace.id
    await rpc_error(
        other.workspaces.GetWorkspace(
            spb.GetWorkspaceRequest(name=home.name), metadata=other.metadata
        ),
        grpc.StatusCode.NOT_FOUND,
    )
