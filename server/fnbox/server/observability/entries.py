"""From a finished invocation to a ``LogEntry``: input, error, console output and outbound
requests, with the sensitive setting values of its instance (or function) redacted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from fnbox.executor import types as ex
from fnbox.functions.v1 import observability_pb2 as opb
from fnbox.server import names
from fnbox.server.dispatch import Target
from fnbox.server.observability.redact import (
    REDACTED,
    SENSITIVE_HEADERS,
    Redactor,
    secret_strings,
)
from fnbox.server.secrets import SecretBox
from fnbox.server.store.base import InstanceRecord
from google.rpc import status_pb2

__all__ = ["NOT_ERRORS", "Finished", "build_entry", "is_error", "redactor_for"]

log = logging.getLogger(__name__)

# Outcomes that are not failures: an unsupported event type is Segment's normal "discard".
NOT_ERRORS = frozenset({ex.Outcome.OK, ex.Outcome.DROP, ex.Outcome.EVENT_NOT_SUPPORTED})


def is_error(outcome: ex.Outcome) -> bool:
    return outcome not in NOT_ERRORS


@dataclass(frozen=True, slots=True)
class Finished:
    """One finished invocation of a stored function, as the dispatcher reported it."""

    spec: ex.FunctionSpec
    invocation: ex.Invocation
    result: ex.InvocationResult
    target: Target
    trace_id: str
    at: float
    # The status its caller got instead of a result (its worker died under it), if so.
    fault: status_pb2.Status | None = None

    @property
    def function_id(self) -> str:
        return self.target.function.id if self.target.function is not None else ""

    @property
    def workspace_id(self) -> str:
        return self.target.function.workspace_id if self.target.function is not None else ""


def redactor_for(
    finished: Finished, instance: InstanceRecord | None, box: SecretBox
) -> tuple[Redactor, frozenset[str]]:
    """The redactor of the invocation's sensitive values, and the request header names whose
    values are credentials.

    The values are taken from the settings the function ran with, at the names its schema
    marks sensitive and (instances) the names stored encrypted; a source instance's webhook
    secret is added. Raises when a value cannot be decrypted (the entry is then dropped).
    """
    function = finished.target.function
    sensitive = {d.name for d in function.settings_schema if d.sensitive} if function else set()
    secrets: list[str] = []
    headers = set(SENSITIVE_HEADERS)
    if instance is not None:
        sensitive.update(instance.secret_settings)
        auth = instance.webhook_auth
        if auth is not None and auth.secret:
            secrets.append(box.decrypt(auth.secret).decode("utf-8", "replace"))
            if auth.header:
                headers.add(auth.header.lower())
    if sensitive:
        values = orjson.loads(finished.invocation.settings or b"{}")
        if isinstance(values, dict):
            for name in sensitive:
                secrets.extend(secret_strings(values.get(name)))
    return Redactor(secrets), frozenset(headers)


def _input(finished: Finished, headers: frozenset[str]) -> bytes:
    invocation = finished.invocation
    if invocation.kind != "request" or invocation.request is None:
        return invocation.payload
    request = invocation.request
    return orjson.dumps(
        {
            "method": request.method,
            "url": request.url,
            "headers": {
                name: REDACTED if name.lower() in headers else value
                for name, value in request.headers.items()
            },
            "body": request.body.decode("utf-8", "replace"),
        }
    )


def build_entry(
    finished: Finished,
    kind: opb.LogEntryKind,
    *,
    entry_id: str,
    instance: InstanceRecord | None,
    box: SecretBox,
    max_input_bytes: int,
) -> opb.LogEntry:
    """The redacted log entry of ``finished`` (``instance``: the instance that ran, if any)."""
    redactor, headers = redactor_for(finished, instance, box)
    target = finished.target
    result = finished.result
    workspace_id = finished.workspace_id
    function = names.function_name(workspace_id, finished.function_id)
    raw_input = redactor.data(_input(finished, headers))
    entry = opb.LogEntry(
        name=f"{function}/logs/{entry_id}",
        function=function,
        instance=names.instance_name(workspace_id, target.instance_id)
        if target.instance_id
        else "",
        version=target.version_name,
        kind=kind,
        # No result when the worker died under it: the fault says what happened.
        outcome="OUTCOME_UNSPECIFIED"
        if finished.fault is not None
        else f"OUTCOME_{result.outcome.value}",
        logs=[redactor.text(line) for line in result.logs],
        logs_truncated=result.logs_truncated,
        duration_ms=result.duration_ms,
        input=raw_input[:max_input_bytes],
        input_truncated=len(raw_input) > max_input_bytes,
        trace_id=finished.trace_id,
        request_id=target.request_id,
    )
    entry.time.FromDatetime(datetime.fromtimestamp(finished.at, UTC))
    if finished.fault is not None:
        entry.fault.CopyFrom(finished.fault)
        # The worker's last words (in the message) may quote a setting.
        entry.fault.message = redactor.text(finished.fault.message)
    if result.error is not None:
        entry.error.name = redactor.text(result.error.name)
        entry.error.message = redactor.text(result.error.message)
        entry.error.stack = redactor.text(result.error.stack)
    for request in result.requests:
        entry.requests.add(
            method=request.method,
            url=redactor.text(request.url),
            status=request.status,
            duration_ms=request.duration_ms,
            error=redactor.text(request.error),
        )
    return entry
