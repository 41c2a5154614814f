"""Builders for invocation requests (payloads stay JSON bytes; nothing is decoded here)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from fnbox.client.instances import SettingValues, settings_bytes
from fnbox.functions.v1 import invocation_pb2, resources_pb2

__all__ = ["invoke_request", "run_request", "webhook_request"]


def webhook_request(
    method: str = "POST",
    url: str = "http://localhost/",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> invocation_pb2.WebhookRequest:
    """A webhook request for a source function's ``onRequest``."""
    return invocation_pb2.WebhookRequest(
        method=method, url=url, headers=dict(headers or {}), body=body
    )


def invoke_request(
    target: str,
    *,
    event: bytes | None = None,
    events: bytes | None = None,
    request: invocation_pb2.WebhookRequest | None = None,
    settings: SettingValues | None = None,
    request_id: str | None = None,
    version: int = 0,
) -> invocation_pb2.InvokeFunctionRequest:
    """An ``InvokeFunctionRequest`` with exactly one input and a request id.

    Args:
        target: an instance, a function or a function version (resource name or short id).
        event: one Segment event, JSON bytes.
        events: a JSON array of events (for ``onBatch``), bytes.
        request: a webhook request, for source functions.
        settings: setting values for function targets (instances use their own).
        request_id: identifies retries of this invocation; generated when omitted.
        version: instance targets only: run this version of the instance's function instead
            of the deployed one (0).
    """
    message = invocation_pb2.InvokeFunctionRequest(
        target=target, request_id=request_id or str(uuid.uuid4()), version=version
    )
    _set_input(message, event, events, request)
    if settings is not None:
        message.settings = settings_bytes(settings)
    return message


def run_request(
    type: resources_pb2.FunctionType,
    code: str,
    *,
    event: bytes | None = None,
    events: bytes | None = None,
    request: invocation_pb2.WebhookRequest | None = None,
    settings: SettingValues | None = None,
    limits: resources_pb2.FunctionLimits | None = None,
    parent: str = "",
) -> invocation_pb2.RunFunctionRequest:
    """A ``RunFunctionRequest`` for unsaved code with exactly one input."""
    message = invocation_pb2.RunFunctionRequest(parent=parent, type=type, code=code, limits=limits)
    _set_input(message, event, events, request)
    if settings is not None:
        message.settings = settings_bytes(settings)
    return message


def _set_input(
    message: invocation_pb2.InvokeFunctionRequest | invocation_pb2.RunFunctionRequest,
    event: bytes | None,
    events: bytes | None,
    request: invocation_pb2.WebhookRequest | None,
) -> None:
    given = sum(value is not None for value in (event, events, request))
    if given != 1:
        raise ValueError("give exactly one of event, events or request")
    if event is not None:
        message.event = event
    elif events is not None:
        message.events = events
    elif request is not None:
        message.request.CopyFrom(request)
