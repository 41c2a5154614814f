"""FunctionService: functions, their versions, and invocation."""

from __future__ import annotations

from datetime import UTC, datetime

from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc
from fnbox.server import convert, names, validation
from fnbox.server.auth import Principal
from fnbox.server.dispatch import Dispatcher
from fnbox.server.errors import FailedPrecondition, InvalidArgument, NotFound
from fnbox.server.servicers.base import Deps, Servicer, rpc, update_paths
from fnbox.server.servicers.invoke import InvokeMixin
from fnbox.server.store.base import FunctionChanges, FunctionRecord, Role


class FunctionService(InvokeMixin, Servicer, service_pb2_grpc.FunctionServiceServicer):
    def __init__(self, deps: Deps, *, dispatcher: Dispatcher) -> None:
        super().__init__(deps)
        self.dispatcher = dispatcher

    async def _get(self, principal: Principal, name: str) -> FunctionRecord:
        ref = names.parse_function(name)
        function = await self.store.get_function(ref.id)
        if function is None or not principal.sees(ref, function.workspace_id):
            raise NotFound(name, kind="function")
        return function

    @rpc(Role.DEVELOPER)
    async def CreateFunction(
        self, request: spb.CreateFunctionRequest, principal: Principal
    ) -> pb.Function:
        workspace_id = principal.workspace(request.parent)
        given = request.function
        display_name = validation.display_name(given.display_name)
        function_type = convert.function_type(given.type)
        code = validation.code(given.code)
        schema = validation.settings_schema(given.settings_schema)
        batch_count, batch_wait = validation.batch_options(given.batch)
        timeout_ms, memory_mib = validation.limits(given.limits, self.deps.settings.executor)
        await self.dispatcher.compile(code)
        now = datetime.now(UTC)
        record = FunctionRecord(
            id=names.new_id(names.FUNCTION),
            workspace_id=workspace_id,
            display_name=display_name,
            type=function_type,
            code=code,
            settings_schema=schema,
            batch_max_count=batch_count,
            batch_max_wait_ms=batch_wait,
            timeout_ms=timeout_ms,
            memory_mib=memory_mib,
            no_network=given.limits.no_network,
            latest_version=1,
            deployed_version=0,
            create_time=now,
            update_time=now,
        )
        created = await self.store.create_function(
            record, author=principal.subject, request_id=request.request_id
        )
        return convert.function_pb(created)

    @rpc(Role.READ_ONLY)
    async def GetFunction(
        self, request: spb.GetFunctionRequest, principal: Principal
    ) -> pb.Function:
        return convert.function_pb(await self._get(principal, request.name))

    @rpc(Role.READ_ONLY)
    async def ListFunctions(
        self, request: spb.ListFunctionsRequest, principal: Principal
    ) -> spb.ListFunctionsResponse:
        workspace_id = principal.workspace(request.parent)
        function_type = convert.function_type(request.type) if request.type else None
        kind = f"functions:{workspace_id}:{request.type}"
        page = await self.store.list_functions(
            workspace_id,
            type=function_type,
            after=names.decode_page_token(kind, request.page_token),
            limit=names.page_size(request.page_size),
        )
        return spb.ListFunctionsResponse(
            functions=[convert.function_pb(item) for item in page.items],
            next_page_token=names.next_page_token(kind, page.next_after),
            total_size=page.total_size,
        )

    @rpc(Role.DEVELOPER)
    async def UpdateFunction(
        self, request: spb.UpdateFunctionRequest, principal: Principal
    ) -> pb.Function:
        given = request.function
        current = await self._get(principal, given.name)
        paths = update_paths(
            request.update_mask.paths,
            {
                "display_name": bool(given.display_name),
                "code": bool(given.code),
                "settings_schema": len(given.settings_schema) > 0,
                "batch": given.HasField("batch"),
                "limits": given.HasField("limits"),
            },
        )
        count = wait = timeout_ms = memory_mib = None
        if "batch" in paths:
            count, wait = validation.batch_options(given.batch)
        if "limits" in paths:
            timeout_ms, memory_mib = validation.limits(given.limits, self.deps.settings.executor)
        changes = FunctionChanges(
            author=principal.subject,
            display_name=(
                validation.display_name(given.display_name) if "display_name" in paths else None
            ),
            code=validation.code(given.code) if "code" in paths else None,
            settings_schema=(
                validation.settings_schema(given.settings_schema)
                if "settings_schema" in paths
                else None
            ),
            batch_max_count=count,
            batch_max_wait_ms=wait,
            timeout_ms=timeout_ms,
            memory_mib=memory_mib,
            no_network=given.limits.no_network if "limits" in paths else None,
        )
        if changes.code is not None and changes.code != current.code:
            await self.dispatcher.compile(changes.code)
        updated = await self.store.update_function(current.id, changes)
        if updated is None:
            raise NotFound(given.name, kind="function")
        return convert.function_pb(updated)

    @rpc(Role.ADMIN)
    async def DeleteFunction(
        self, request: spb.DeleteFunctionRequest, principal: Principal
    ) -> spb.DeleteFunctionResponse:
        function = await self._get(principal, request.name)
        deleted = await self.store.delete_function(function.id, force=request.force)
        if deleted is None:
            raise NotFound(request.name, kind="function")
        if not deleted:
            raise FailedPrecondition(
                f"function {function.id} has instances; delete them or set force",
                reason="FUNCTION_HAS_INSTANCES",
                metadata={"function": function.id},
            )
        return spb.DeleteFunctionResponse(status="SUCCESS")

    @rpc(Role.READ_ONLY)
    async def ListVersions(
        self, request: spb.ListVersionsRequest, principal: Principal
    ) -> spb.ListVersionsResponse:
        function = await self._get(principal, request.parent)
        kind = f"versions:{function.id}"
        page = await self.store.list_versions(
            function.id,
            after=names.decode_page_token(kind, request.page_token),
            limit=names.page_size(request.page_size),
        )
        return spb.ListVersionsResponse(
            versions=[convert.version_pb(item, function) for item in page.items],
            next_page_token=names.next_page_token(kind, page.next_after),
        )

    @rpc(Role.DEVELOPER)
    async def DeployFunction(
        self, request: spb.DeployFunctionRequest, principal: Principal
    ) -> pb.Function:
        function = await self._get(principal, request.name)
        version = request.version or function.latest_version
        deployed = await self.store.deploy_version(function.id, version, when=datetime.now(UTC))
        if deployed is None:
            raise NotFound(
                names.version_name(function.workspace_id, function.id, version), kind="version"
            )
        return convert.function_pb(deployed)

    @rpc(Role.DEVELOPER)
    async def RestoreVersion(
        self, request: spb.RestoreVersionRequest, principal: Principal
    ) -> pb.Version:
        function = await self._get(principal, request.name)
        if request.version <= 0:
            raise InvalidArgument("version is required", reason="VERSION_REQUIRED")
        restored = await self.store.restore_version(
            function.id, request.version, author=principal.subject
        )
        if restored is None:
            raise NotFound(
                names.version_name(function.workspace_id, function.id, request.version),
                kind="version",
            )
        after = await self.store.get_function(function.id)
        if after is None:
            raise NotFound(request.name, kind="function")
        return convert.version_pb(restored, after)
