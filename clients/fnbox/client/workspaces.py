"""Workspaces and their API tokens: ``client.workspaces``."""

from __future__ import annotations

from fnbox.client.transport import Transport
from fnbox.functions.v1 import resources_pb2, service_pb2

__all__ = ["WorkspacesAPI"]

_SERVICE = "WorkspaceService"


class WorkspacesAPI:
    """Workspaces (platform admins) and tokens (workspace admins)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def create(self, display_name: str) -> service_pb2.CreateWorkspaceResponse:
        """Make a workspace and its first admin token, whose secret is returned only here.

        Needs a platform admin token. Not retried: a repeat would make a second workspace.
        """
        request = service_pb2.CreateWorkspaceRequest(display_name=display_name)
        return await self._transport.unary(
            _SERVICE,
            "CreateWorkspace",
            request,
            service_pb2.CreateWorkspaceResponse,
            idempotent=False,
        )

    async def get(self) -> resources_pb2.Workspace:
        """The workspace the client's token belongs to."""
        return await self._transport.unary(
            _SERVICE,
            "GetWorkspace",
            service_pb2.GetWorkspaceRequest(),
            resources_pb2.Workspace,
            idempotent=True,
        )

    async def create_token(
        self, role: resources_pb2.Role, *, description: str = "", parent: str = ""
    ) -> resources_pb2.Token:
        """Issue a token with ``role``; its ``secret`` is returned only here. Not retried."""
        request = service_pb2.CreateTokenRequest(parent=parent, role=role, description=description)
        return await self._transport.unary(
            _SERVICE, "CreateToken", request, resources_pb2.Token, idempotent=False
        )

    async def list_tokens(self, *, parent: str = "") -> list[resources_pb2.Token]:
        """The workspace's tokens, without their secrets."""
        request = service_pb2.ListTokensRequest(parent=parent)
        response = await self._transport.unary(
            _SERVICE, "ListTokens", request, service_pb2.ListTokensResponse, idempotent=True
        )
        return list(response.tokens)

    async def delete_token(self, name: str) -> None:
        """Revoke the token ``name`` (resource name or short id)."""
        request = service_pb2.DeleteTokenRequest(name=name)
        await self._transport.unary(
            _SERVICE, "DeleteToken", request, service_pb2.DeleteTokenResponse, idempotent=False
        )
