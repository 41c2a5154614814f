"""What the conformance tests share: the client, building inputs, reading results.

Everything goes through the public gRPC API: ``RunFunction`` for unsaved code (the editor's
Test button) and ``InvokeFunction`` on saved and deployed functions and their instances.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fnbox.client import FnboxClient, webhook_request
from fnbox.functions.v1 import invocation_pb2, resources_pb2

pb = resources_pb2
ipb = invocation_pb2

SOURCE = pb.FUNCTION_TYPE_SOURCE
DESTINATION = pb.FUNCTION_TYPE_DESTINATION
INSERT_DESTINATION = pb.FUNCTION_TYPE_INSERT_DESTINATION
INSERT_SOURCE = pb.FUNCTION_TYPE_INSERT_SOURCE

OK = ipb.OUTCOME_OK
EVENT_NOT_SUPPORTED = ipb.OUTCOME_EVENT_NOT_SUPPORTED
INVALID_EVENT_PAYLOAD = ipb.OUTCOME_INVALID_EVENT_PAYLOAD
VALIDATION_ERROR = ipb.OUTCOME_VALIDATION_ERROR
RETRY = ipb.OUTCOME_RETRY
DROP = ipb.OUTCOME_DROP
TIMEOUT = ipb.OUTCOME_TIMEOUT
ERROR = ipb.OUTCOME_ERROR

Result = invocation_pb2.InvocationResult

_names = itertools.count(1)


def event(type: str = "track", **fields: Any) -> bytes:
    """A Segment event as JSON bytes; ``track`` events get ``event`` and ``userId`` defaults."""
    body: dict[str, Any] = {"type": type}
    if type == "track":
        body |= {"event": "Order Completed", "userId": "u1"}
    body |= fields
    return orjson.dumps(body)


def events(*items: Mapping[str, Any]) -> bytes:
    """A JSON array of events (a batch)."""
    return orjson.dumps(list(items))


def request(
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    url: str = "https://fnbox.test/hook",
    method: str = "POST",
) -> invocation_pb2.WebhookRequest:
    """A webhook request; ``body`` is serialized as JSON unless ``raw`` bytes are given."""
    data = raw if raw is not None else orjson.dumps(body if body is not None else {})
    given = {"Content-Type": "application/json"} | dict(headers or {})
    return webhook_request(method=method, url=url, headers=given, body=data)


def emitted(result: Result) -> list[dict[str, Any]]:
    """The events a source function emitted, decoded."""
    return [orjson.loads(item) for item in result.events]


def objects(result: Result) -> list[dict[str, Any]]:
    """The objects (``Segment.set``) a source function emitted, decoded."""
    return [orjson.loads(item) for item in result.objects]


def returned(result: Result) -> Any:
    """An insert function's returned event, decoded (None when absent)."""
    return orjson.loads(result.returned) if result.HasField("returned") else None


def logged(result: Result) -> list[str]:
    return list(result.logs)


def outcome(value: int) -> str:
    return ipb.Outcome.Name(value).removeprefix("OUTCOME_")


def setting(
    name: str, type: int = pb.SETTING_TYPE_STRING, **flags: bool
) -> resources_pb2.SettingDefinition:
    return pb.SettingDefinition(name=name, label=name, type=type, **flags)  # type: ignore[arg-type]


@dataclass
class Conformance:
    """The client plus the shortcuts every test uses."""

    client: FnboxClient
    target: str
    token: str

    async def run(
        self,
        type: resources_pb2.FunctionType,
        code: str,
        *,
        event: bytes | None = None,
        events: bytes | None = None,
        request: invocation_pb2.WebhookRequest | None = None,
        settings: Mapping[str, Any] | None = None,
        timeout_ms: int = 0,
    ) -> Result:
        """RunFunction: unsaved code, nothing stored."""
        limits = pb.FunctionLimits(timeout_ms=timeout_ms) if timeout_ms else None
        return await self.client.run(
            type,
            code,
            event=event,
            events=events,
            request=request,
            settings=settings,
            limits=limits,
        )

    async def deployed(
        self,
        type: resources_pb2.FunctionType,
        code: str,
        *,
        schema: Sequence[resources_pb2.SettingDefinition] = (),
        name: str | None = None,
        timeout_ms: int = 0,
    ) -> resources_pb2.Function:
        """CreateFunction (version 1) then DeployFunction."""
        limits = pb.FunctionLimits(timeout_ms=timeout_ms) if timeout_ms else None
        made = await self.client.functions.create(
            name or f"conformance {next(_names)}",
            type,
            code,
            settings_schema=schema,
            limits=limits,
        )
        return await self.client.functions.deploy(made.name)

    async def instance(
        self, function: str, settings: Mapping[str, Any] | None = None, name: str = "inst"
    ) -> resources_pb2.Instance:
        return await self.client.instances.create(function, name, settings=dict(settings or {}))

    async def invoke(
        self,
        target: str,
        *,
        event: bytes | None = None,
        events: bytes | None = None,
        request: invocation_pb2.WebhookRequest | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Result:
        """InvokeFunction on an instance, a function or a version."""
        return await self.client.invoke(
            target, event=event, events=events, request=request, settings=settings
        )


def describe(result: Result) -> str:
    """One line for assertion messages."""
    error = f" {result.error.name}: {result.error.message}" if result.error.name else ""
    return f"{outcome(result.outcome)}{error} logs={list(result.logs)}"
