"""InstanceService: functions connected with their settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime

from fnbox.executor.types import FunctionType
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc
from fnbox.server import convert, names, validation
from fnbox.server.auth import Principal
from fnbox.server.errors import InvalidArgument, NotFound
from fnbox.server.servicers.base import Servicer, rpc, update_paths
from fnbox.server.store.base import (
    FunctionRecord,
    InstanceRecord,
    Role,
    SettingDef,
    WebhookAuthRecord,
)

# Which insert function may sit in front of an instance of each type.
INSERT_FOR = {
    FunctionType.SOURCE: FunctionType.INSERT_SOURCE,
    FunctionType.DESTINATION: FunctionType.INSERT_DESTINATION,
}


class InstanceService(Servicer, service_pb2_grpc.InstanceServiceServicer):
    async def _get(self, principal: Principal, name: str) -> InstanceRecord:
        ref = names.parse_instance(name)
        instance = await self.store.get_instance(ref.id)
        if instance is None or not principal.sees(ref, instance.workspace_id):
            raise NotFound(name, kind="instance")
        return instance

    async def _function(self, principal: Principal, name: str, workspace_id: str) -> FunctionRecord:
        if not name:
            raise InvalidArgument("function is required", reason="FUNCTION_REQUIRED")
        ref = names.parse_function(name)
        function = await self.store.get_function(ref.id)
        if (
            function is None
            or function.workspace_id != workspace_id
            or not principal.sees(ref, function.workspace_id)
        ):
            raise NotFound(name, kind="function")
        return function

    async def _schema(self, function: FunctionRecord) -> tuple[SettingDef, ...]:
        """The schema settings are checked against: the deployed version's, else the latest's."""
        deployed = function.deployed_version
        if not deployed or deployed == function.latest_version:
            return function.settings_schema
        version = await self.store.get_version(function.id, deployed)
        return function.settings_schema if version is None else version.settings_schema

    async def _linked(
        self, principal: Principal, workspace_id: str, name: str, allowed: FunctionType, what: str
    ) -> InstanceRecord:
        linked = await self._get(principal, name)
        if linked.workspace_id != workspace_id:
            raise NotFound(name, kind="instance")
        if linked.function_type is not allowed:
            raise InvalidArgument(
                f"{what} {name!r} is not a {allowed.value.lower()} instance",
                reason="INVALID_LINK",
                metadata={"instance": linked.id, "field": what},
            )
        return linked

    async def _sources(
        self, principal: Principal, workspace_id: str, own_type: FunctionType, given: Iterable[str]
    ) -> tuple[str, ...]:
        wanted = list(dict.fromkeys(given))
        if wanted and own_type is FunctionType.SOURCE:
            raise InvalidArgument("a source instance has no sources", reason="INVALID_LINK")
        found = [
            await self._linked(principal, workspace_id, name, FunctionType.SOURCE, "sources")
            for name in wanted
        ]
        return tuple(dict.fromkeys(linked.id for linked in found))

    async def _insert(
        self, principal: Principal, workspace_id: str, own_type: FunctionType, name: str
    ) -> str:
        if not name:
            return ""
        allowed = INSERT_FOR.get(own_type)
        if allowed is None:
            raise InvalidArgument(
                f"a {own_type.value.lower()} instance cannot have an insert instance",
                reason="INVALID_LINK",
            )
        linked = await self._linked(principal, workspace_id, name, allowed, "insert_instance")
        return linked.id

    def _webhook_auth(
        self, own_type: FunctionType, given: pb.WebhookAuth, current: WebhookAuthRecord | None
    ) -> WebhookAuthRecord | None:
        if given.mode == pb.WebhookAuth.MODE_UNSPECIFIED:
            return None
        if own_type is not FunctionType.SOURCE:
            raise InvalidArgument("only source instances take webhook_auth", reason="INVALID_LINK")
        mode = pb.WebhookAuth.Mode.Name(given.mode).removeprefix("MODE_")
        if given.secret:
            secret = self.deps.box.encrypt(given.secret.encode())
        elif current is not None and current.secret:
            secret = current.secret
        else:
            raise InvalidArgument("webhook_auth needs a secret", reason="WEBHOOK_SECRET_REQUIRED")
        return WebhookAuthRecord(mode=mode, header=given.header, secret=secret)

    def _pb(self, record: InstanceRecord, *, webhook_secret: str = "") -> pb.Instance:
        return convert.instance_pb(
            record,
            gateway_base_url=self.deps.settings.gateway.base_url(),
            webhook_secret=webhook_secret,
        )

    @rpc(Role.DEVELOPER)
    async def CreateInstance(
        self, request: spb.CreateInstanceRequest, principal: Principal
    ) -> pb.Instance:
        workspace_id = principal.workspace(request.parent)
        given = request.instance
        display_name = validation.display_name(given.display_name)
        function = await self._function(principal, given.function, workspace_id)
        plain, secret = validation.instance_settings(
            given.settings, await self._schema(function), self.deps.box
        )
        now = datetime.now(UTC)
        record = InstanceRecord(
            id=names.new_id(names.INSTANCE),
            workspace_id=workspace_id,
            function_id=function.id,
            function_type=function.type,
            display_name=display_name,
            settings=plain,
            secret_settings=secret,
            enabled=given.enabled if given.HasField("enabled") else True,
            create_time=now,
            update_time=now,
            sources=await self._sources(principal, workspace_id, function.type, given.sources),
            insert_instance_id=await self._insert(
                principal, workspace_id, function.type, given.insert_instance
            ),
            webhook_auth=self._webhook_auth(function.type, given.webhook_auth, None),
        )
        created = await self.store.create_instance(record, request_id=request.request_id)
        return self._pb(created)

    @rpc(Role.READ_ONLY)
    async def GetInstance(
        self, request: spb.GetInstanceRequest, principal: Principal
    ) -> pb.Instance:
        instance = await self._get(principal, request.name)
        if not request.reveal_webhook_secret:
            return self._pb(instance)
        principal.require_platform_admin()
        auth = instance.webhook_auth
        secret = self.deps.box.decrypt(auth.secret).decode() if auth and auth.secret else ""
        return self._pb(instance, webhook_secret=secret)

    @rpc(Role.READ_ONLY)
    async def ListInstances(
        self, request: spb.ListInstancesRequest, principal: Principal
    ) -> spb.ListInstancesResponse:
        workspace_id = principal.workspace(request.parent)
        function_id = None
        if request.function:
            function_id = (await self._function(principal, request.function, workspace_id)).id
        kind = f"instances:{workspace_id}:{function_id or ''}"
        page = await self.store.list_instances(
            workspace_id,
            function_id=function_id,
            after=names.decode_page_token(kind, request.page_token),
            limit=names.page_size(request.page_size),
        )
        return spb.ListInstancesResponse(
            instances=[self._pb(item) for item in page.items],
            next_page_token=names.next_page_token(kind, page.next_after),
            total_size=page.total_size,
        )

    @rpc(Role.DEVELOPER)
    async def UpdateInstance(
        self, request: spb.UpdateInstanceRequest, principal: Principal
    ) -> pb.Instance:
        given = request.instance
        current = await self._get(principal, given.name)
        paths = update_paths(
            request.update_mask.paths,
            {
                "display_name": bool(given.display_name),
                "settings": bool(given.settings),
                "enabled": given.HasField("enabled"),
                "sources": len(given.sources) > 0,
                "insert_instance": bool(given.insert_instance),
                "webhook_auth": given.HasField("webhook_auth"),
            },
        )
        ws, own_type = current.workspace_id, current.function_type
        updated = dataclasses.replace(current, update_time=datetime.now(UTC))
        if "display_name" in paths:
            updated = dataclasses.replace(
                updated, display_name=validation.display_name(given.display_name)
            )
        if "settings" in paths:
            function = await self.store.get_function(current.function_id)
            if function is None:
                raise NotFound(given.name, kind="instance")
            plain, secret = validation.instance_settings(
                given.settings,
                await self._schema(function),
                self.deps.box,
                stored_secrets=current.secret_settings,
            )
            updated = dataclasses.replace(updated, settings=plain, secret_settings=secret)
        if "enabled" in paths:
            updated = dataclasses.replace(updated, enabled=given.enabled)
        if "sources" in paths:
            sources = await self._sources(principal, ws, own_type, given.sources)
            updated = dataclasses.replace(updated, sources=sources)
        if "insert_instance" in paths:
            insert = await self._insert(principal, ws, own_type, given.insert_instance)
            updated = dataclasses.replace(updated, insert_instance_id=insert)
        if "webhook_auth" in paths:
            auth = self._webhook_auth(own_type, given.webhook_auth, current.webhook_auth)
            updated = dataclasses.replace(updated, webhook_auth=auth)
        saved = await self.store.update_instance(updated)
        if saved is None:
            raise NotFound(given.name, kind="instance")
        return self._pb(saved)

    @rpc(Role.ADMIN)
    async def DeleteInstance(
        self, request: spb.DeleteInstanceRequest, principal: Principal
    ) -> spb.DeleteInstanceResponse:
        instance = await self._get(principal, request.name)
        if not await self.store.delete_instance(instance.id):
            raise NotFound(request.name, kind="instance")
        return spb.DeleteInstanceResponse(status="SUCCESS")
