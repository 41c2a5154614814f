"""WorkspaceService: workspaces and their tokens."""

from __future__ import annotations

from datetime import UTC, datetime

from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc
from fnbox.server import convert, names, validation
from fnbox.server.auth import Principal, new_token
from fnbox.server.errors import NotFound
from fnbox.server.servicers.base import Servicer, rpc
from fnbox.server.store.base import Role, WorkspaceRecord


class WorkspaceService(Servicer, service_pb2_grpc.WorkspaceServiceServicer):
    @rpc(Role.READ_ONLY)
    async def CreateWorkspace(
        self, request: spb.CreateWorkspaceRequest, principal: Principal
    ) -> spb.CreateWorkspaceResponse:
        principal.require_platform_admin()
        workspace = WorkspaceRecord(
            id=names.new_id(names.WORKSPACE),
            display_name=validation.display_name(request.display_name),
            create_time=datetime.now(UTC),
        )
        token, secret = new_token(workspace.id, Role.ADMIN, "first admin token")
        await self.store.create_workspace(workspace, token)
        return spb.CreateWorkspaceResponse(
            workspace=convert.workspace_pb(workspace),
            admin_token=convert.token_pb(token, secret=secret),
        )

    @rpc(Role.READ_ONLY)
    async def GetWorkspace(
        self, request: spb.GetWorkspaceRequest, principal: Principal
    ) -> pb.Workspace:
        workspace_id = principal.workspace(request.name)  # another one: platform admins only
        workspace = await self.store.get_workspace(workspace_id)
        if workspace is None:
            raise NotFound(names.workspace_name(workspace_id), kind="workspace")
        return convert.workspace_pb(workspace)

    @rpc(Role.ADMIN)
    async def CreateToken(self, request: spb.CreateTokenRequest, principal: Principal) -> pb.Token:
        workspace_id = principal.workspace(request.parent)
        if await self.store.get_workspace(workspace_id) is None:
            raise NotFound(request.parent, kind="workspace")
        token, secret = new_token(workspace_id, convert.role(request.role), request.description)
        await self.store.create_token(token)
        return convert.token_pb(token, secret=secret)

    @rpc(Role.ADMIN)
    async def ListTokens(
        self, request: spb.ListTokensRequest, principal: Principal
    ) -> spb.ListTokensResponse:
        workspace_id = principal.workspace(request.parent)
        tokens = await self.store.list_tokens(workspace_id)
        return spb.ListTokensResponse(tokens=[convert.token_pb(token) for token in tokens])

    @rpc(Role.ADMIN)
    async def DeleteToken(
        self, request: spb.DeleteTokenRequest, principal: Principal
    ) -> spb.DeleteTokenResponse:
        ref = names.parse_token(request.name)
        workspace_id = ref.workspace_id or principal.workspace_id
        if not principal.can_access(workspace_id) or not await self.store.delete_token(
            workspace_id, ref.id
        ):
            raise NotFound(request.name, kind="token")
        return spb.DeleteTokenResponse(status="SUCCESS")
