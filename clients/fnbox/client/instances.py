"""Instances, functions connected with their setting values: ``client.instances``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson
from fnbox.client.paging import every_item
from fnbox.client.transport import Transport
from fnbox.functions.v1 import resources_pb2, service_pb2
from google.protobuf.field_mask_pb2 import FieldMask

__all__ = ["InstancesAPI", "SettingValues", "settings_bytes"]

_SERVICE = "InstanceService"

SettingValues = bytes | Mapping[str, Any]
"""Setting values: a JSON object, as bytes or as a mapping the client serializes."""


def settings_bytes(settings: SettingValues) -> bytes:
    """``settings`` as JSON bytes (bytes pass through untouched)."""
    if isinstance(settings, bytes):
        return settings
    return orjson.dumps(dict(settings))


class InstancesAPI:
    """Create, read, update and delete instances.

    Every ``name`` argument accepts a resource name (``workspaces/w/instances/i``) or the
    instance's short id; so does ``function``.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def create(
        self,
        function: str,
        display_name: str,
        *,
        settings: SettingValues = b"{}",
        enabled: bool = True,
        sources: Sequence[str] = (),
        insert_instance: str = "",
        webhook_auth: resources_pb2.WebhookAuth | None = None,
        parent: str = "",
        request_id: str | None = None,
    ) -> resources_pb2.Instance:
        """Connect ``function`` with setting values (validated against its schema).

        Sensitive values are encrypted at rest and never returned. ``sources`` are the source
        instances a destination receives events from, ``insert_instance`` an insert instance
        run in front of this one, ``webhook_auth`` how a source's webhooks are authenticated.
        Retried safely thanks to the ``request_id`` (generated when omitted).
        """
        instance = resources_pb2.Instance(
            function=function,
            display_name=display_name,
            settings=settings_bytes(settings),
            enabled=enabled,
            sources=sources,
            insert_instance=insert_instance,
            webhook_auth=webhook_auth,
        )
        request = service_pb2.CreateInstanceRequest(
            parent=parent, instance=instance, request_id=request_id or str(uuid.uuid4())
        )
        return await self._transport.unary(
            _SERVICE, "CreateInstance", request, resources_pb2.Instance, idempotent=True
        )

    async def get(
        self, name: str, *, reveal_webhook_secret: bool = False
    ) -> resources_pb2.Instance:
        """The instance ``name``; its ``settings`` omit sensitive values.

        ``reveal_webhook_secret`` (platform-admin tokens only) returns the webhook secret.
        """
        request = service_pb2.GetInstanceRequest(
            name=name, reveal_webhook_secret=reveal_webhook_secret
        )
        return await self._transport.unary(
            _SERVICE, "GetInstance", request, resources_pb2.Instance, idempotent=True
        )

    async def list(
        self, *, parent: str = "", function: str = "", page_size: int = 0, page_token: str = ""
    ) -> service_pb2.ListInstancesResponse:
        """One page of the workspace's instances (only ``function``'s, when given)."""
        request = service_pb2.ListInstancesRequest(
            parent=parent, function=function, page_size=page_size, page_token=page_token
        )
        return await self._transport.unary(
            _SERVICE, "ListInstances", request, service_pb2.ListInstancesResponse, idempotent=True
        )

    async def iterate(
        self, *, parent: str = "", function: str = "", page_size: int = 0
    ) -> AsyncIterator[resources_pb2.Instance]:
        """Every instance of the workspace (only ``function``'s, when given)."""
        async for instance in every_item(
            lambda token: self.list(
                parent=parent, function=function, page_size=page_size, page_token=token
            ),
            lambda page: page.instances,
        ):
            yield instance

    async def update(
        self,
        name: str,
        *,
        display_name: str | None = None,
        settings: SettingValues | None = None,
        enabled: bool | None = None,
        sources: Sequence[str] | None = None,
        insert_instance: str | None = None,
        webhook_auth: resources_pb2.WebhookAuth | None = None,
    ) -> resources_pb2.Instance:
        """Change the given fields only.

        In ``settings`` an absent sensitive key keeps its stored value and a key set to
        ``null`` removes it.
        """
        instance = resources_pb2.Instance(name=name)
        paths: list[str] = []
        if display_name is not None:
            instance.display_name = display_name
            paths.append("display_name")
        if settings is not None:
            instance.settings = settings_bytes(settings)
            paths.append("settings")
        if enabled is not None:
            instance.enabled = enabled
            paths.append("enabled")
        if sources is not None:
            instance.sources.extend(sources)
            paths.append("sources")
        if insert_instance is not None:
            instance.insert_instance = insert_instance
            paths.append("insert_instance")
        if webhook_auth is not None:
            instance.webhook_auth.CopyFrom(webhook_auth)
            paths.append("webhook_auth")
        request = service_pb2.UpdateInstanceRequest(
            instance=instance, update_mask=FieldMask(paths=paths)
        )
        # Idempotent: setting the same values twice leaves the same instance.
        return await self._transport.unary(
            _SERVICE, "UpdateInstance", request, resources_pb2.Instance, idempotent=True
        )

    async def delete(self, name: str) -> None:
        """Delete the instance."""
        request = service_pb2.DeleteInstanceRequest(name=name)
        await self._transport.unary(
            _SERVICE,
            "DeleteInstance",
            request,
            service_pb2.DeleteInstanceResponse,
            idempotent=False,
        )
