"""Helpers for the control-service API tests: stubs, request builders, error checks."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.functions.v1 import service_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.conftest import RunningServer

DESTINATION_CODE = """
async function onTrack(event, settings) {
  console.log('track ' + event.event);
}
"""
SOURCE_CODE = """
async function onRequest(request, settings) {
  const body = request.json();
  Segment.track({ event: body.name, userId: 'u1' });
}
"""


@dataclass
class Api:
    """The three services over one channel, with one token's metadata."""

    functions: Any
    instances: Any
    workspaces: Any
    metadata: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, server: RunningServer, token: str | None = None) -> Api:
        return cls(
            service_pb2_grpc.FunctionServiceStub(server.channel),
            service_pb2_grpc.InstanceServiceStub(server.channel),
            service_pb2_grpc.WorkspaceServiceStub(server.channel),
            server.auth(token),
        )

    async def create_function(
        self,
        name: str = "fn",
        *,
        type: pb.FunctionType = pb.FUNCTION_TYPE_DESTINATION,
        code: str = DESTINATION_CODE,
        schema: list[pb.SettingDefinition] | None = None,
        request_id: str = "",
        parent: str = "",
    ) -> pb.Function:
        function = pb.Function(display_name=name, type=type, code=code, settings_schema=schema)
        request = spb.CreateFunctionRequest(parent=parent, function=function, request_id=request_id)
        result: pb.Function = await self.functions.CreateFunction(request, metadata=self.metadata)
        return result

    async def create_instance(
        self,
        function: str,
        name: str = "inst",
        *,
        settings: bytes = b"",
        request_id: str = "",
        **fields: Any,
    ) -> pb.Instance:
        instance = pb.Instance(display_name=name, function=function, settings=settings, **fields)
        request = spb.CreateInstanceRequest(instance=instance, request_id=request_id)
        result: pb.Instance = await self.instances.CreateInstance(request, metadata=self.metadata)
        return result

    async def deploy(self, function: str, version: int = 0) -> pb.Function:
        request = spb.DeployFunctionRequest(name=function, version=version)
        result: pb.Function = await self.functions.DeployFunction(request, metadata=self.metadata)
        return result


def setting(
    name: str,
    type: pb.SettingType = pb.SETTING_TYPE_STRING,
    *,
    required: bool = False,
    sensitive: bool = False,
) -> pb.SettingDefinition:
    return pb.SettingDefinition(
        name=name, label=name, type=type, required=required, sensitive=sensitive
    )


async def rpc_error(
    call: Awaitable[Any], code: grpc.StatusCode, reason: str | None = None
) -> error_details_pb2.ErrorInfo:
    """Await ``call``, expect it to fail with ``code`` (and ``reason``); return its ErrorInfo."""
    info, _ = await rpc_failure(call, code, reason)
    return info


async def rpc_failure(
    call: Awaitable[Any], code: grpc.StatusCode, reason: str | None = None
) -> tuple[error_details_pb2.ErrorInfo, str]:
    """``rpc_error``, and the status message too."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == code, (error.code(), error.details())
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no google.rpc.Status in the trailers"
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.domain == "fnbox.dev"
    assert info.reason and info.reason == info.reason.upper()
    if reason is not None:
        assert info.reason == reason, (info.reason, error.details())
    return info, error.details() or ""
