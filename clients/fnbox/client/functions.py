"""Functions and their versions: ``client.functions``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence

from fnbox.client.paging import every_item
from fnbox.client.transport import Transport
from fnbox.functions.v1 import resources_pb2, service_pb2
from google.protobuf.field_mask_pb2 import FieldMask

__all__ = ["FunctionsAPI"]

_SERVICE = "FunctionService"


class FunctionsAPI:
    """Create, read, update, delete, deploy and restore functions.

    Every ``name`` argument accepts a resource name (``workspaces/w/functions/f``) or the
    function's short id.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def create(
        self,
        display_name: str,
        type: resources_pb2.FunctionType,
        code: str,
        *,
        settings_schema: Sequence[resources_pb2.SettingDefinition] = (),
        batch: resources_pb2.BatchOptions | None = None,
        limits: resources_pb2.FunctionLimits | None = None,
        parent: str = "",
        request_id: str | None = None,
    ) -> resources_pb2.Function:
        """Create a function; its code is compiled first and saved as version 1 (not deployed).

        Raises ``InvalidArgument`` with ``line``/``column`` when the code does not compile.
        Retried safely: the ``request_id`` (generated when omitted) makes a repeated create
        return the function the first attempt made.
        """
        function = resources_pb2.Function(
            display_name=display_name,
            type=type,
            code=code,
            settings_schema=settings_schema,
            batch=batch,
            limits=limits,
        )
        request = service_pb2.CreateFunctionRequest(
            parent=parent, function=function, request_id=request_id or str(uuid.uuid4())
        )
        return await self._transport.unary(
            _SERVICE, "CreateFunction", request, resources_pb2.Function, idempotent=True
        )

    async def get(self, name: str) -> resources_pb2.Function:
        """The function ``name`` (with its latest code and schema)."""
        request = service_pb2.GetFunctionRequest(name=name)
        return await self._transport.unary(
            _SERVICE, "GetFunction", request, resources_pb2.Function, idempotent=True
        )

    async def list(
        self,
        *,
        parent: str = "",
        type: resources_pb2.FunctionType = resources_pb2.FUNCTION_TYPE_UNSPECIFIED,
        page_size: int = 0,
        page_token: str = "",
    ) -> service_pb2.ListFunctionsResponse:
        """One page of the workspace's functions; see :meth:`iterate` for all of them."""
        request = service_pb2.ListFunctionsRequest(
            parent=parent, type=type, page_size=page_size, page_token=page_token
        )
        return await self._transport.unary(
            _SERVICE, "ListFunctions", request, service_pb2.ListFunctionsResponse, idempotent=True
        )

    async def iterate(
        self,
        *,
        parent: str = "",
        type: resources_pb2.FunctionType = resources_pb2.FUNCTION_TYPE_UNSPECIFIED,
        page_size: int = 0,
    ) -> AsyncIterator[resources_pb2.Function]:
        """Every function of the workspace, fetching pages as needed."""
        async for function in every_item(
            lambda token: self.list(
                parent=parent, type=type, page_size=page_size, page_token=token
            ),
            lambda page: page.functions,
        ):
            yield function

    async def update(
        self,
        name: str,
        *,
        display_name: str | None = None,
        code: str | None = None,
        settings_schema: Sequence[resources_pb2.SettingDefinition] | None = None,
        batch: resources_pb2.BatchOptions | None = None,
        limits: resources_pb2.FunctionLimits | None = None,
    ) -> resources_pb2.Function:
        """Change the given fields only; new code or schema makes a new (undeployed) version.

        Not retried: a repeated update could make a second version.
        """
        function = resources_pb2.Function(name=name)
        paths: list[str] = []
        if display_name is not None:
            function.display_name = display_name
            paths.append("display_name")
        if code is not None:
            function.code = code
            paths.append("code")
        if settings_schema is not None:
            function.settings_schema.extend(settings_schema)
            paths.append("settings_schema")
        if batch is not None:
            function.batch.CopyFrom(batch)
            paths.append("batch")
        if limits is not None:
            function.limits.CopyFrom(limits)
            paths.append("limits")
        request = service_pb2.UpdateFunctionRequest(
            function=function, update_mask=FieldMask(paths=paths)
        )
        return await self._transport.unary(
            _SERVICE, "UpdateFunction", request, resources_pb2.Function, idempotent=False
        )

    async def delete(self, name: str, *, force: bool = False) -> None:
        """Delete the function; ``force`` also deletes its instances.

        Without ``force`` a function that has instances raises ``FailedPrecondition``.
        """
        request = service_pb2.DeleteFunctionRequest(name=name, force=force)
        await self._transport.unary(
            _SERVICE,
            "DeleteFunction",
            request,
            service_pb2.DeleteFunctionResponse,
            idempotent=False,
        )

    async def list_versions(
        self, function: str, *, page_size: int = 0, page_token: str = ""
    ) -> service_pb2.ListVersionsResponse:
        """One page of the function's versions, newest first."""
        request = service_pb2.ListVersionsRequest(
            parent=function, page_size=page_size, page_token=page_token
        )
        return await self._transport.unary(
            _SERVICE, "ListVersions", request, service_pb2.ListVersionsResponse, idempotent=True
        )

    async def iterate_versions(
        self, function: str, *, page_size: int = 0
    ) -> AsyncIterator[resources_pb2.Version]:
        """Every version of the function, newest first."""
        async for version in every_item(
            lambda token: self.list_versions(function, page_size=page_size, page_token=token),
            lambda page: page.versions,
        ):
            yield version

    async def deploy(self, name: str, *, version: int = 0) -> resources_pb2.Function:
        """Mark ``version`` (default: the latest) deployed; instances run it from now on."""
        request = service_pb2.DeployFunctionRequest(name=name, version=version)
        return await self._transport.unary(
            _SERVICE, "DeployFunction", request, resources_pb2.Function, idempotent=True
        )

    async def restore(self, name: str, version: int) -> resources_pb2.Version:
        """Copy ``version`` to a new latest version (deploy it to make it live).

        Not retried: a repeated restore would make a second copy.
        """
        request = service_pb2.RestoreVersionRequest(name=name, version=version)
        return await self._transport.unary(
            _SERVICE, "RestoreVersion", request, resources_pb2.Version, idempotent=False
        )
