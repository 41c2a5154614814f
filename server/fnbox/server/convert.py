"""Store records and executor results → API messages (and the enums both ways)."""

from __future__ import annotations

from fnbox.executor import types as ex
from fnbox.functions.v1 import invocation_pb2 as ipb
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.server import names
from fnbox.server.errors import InvalidArgument
from fnbox.server.store.base import (
    FunctionRecord,
    InstanceRecord,
    Role,
    SettingDef,
    TokenRecord,
    VersionRecord,
    WorkspaceRecord,
)


def function_type(value: int) -> ex.FunctionType:
    """The executor's FunctionType for an API enum value (INVALID_ARGUMENT when unset)."""
    if value == pb.FUNCTION_TYPE_UNSPECIFIED or value not in pb.FunctionType.values():
        raise InvalidArgument(
            "type is required", reason="TYPE_REQUIRED", metadata={"field": "type"}
        )
    return ex.FunctionType(pb.FunctionType.Name(value).removeprefix("FUNCTION_TYPE_"))


def function_type_pb(value: ex.FunctionType) -> str:
    """The API enum label (protobuf constructors take labels)."""
    return "FUNCTION_TYPE_" + value.value


def role(value: int) -> Role:
    if value == pb.ROLE_UNSPECIFIED or value not in pb.Role.values():
        raise InvalidArgument(
            "role is required", reason="ROLE_REQUIRED", metadata={"field": "role"}
        )
    return Role(pb.Role.Name(value).removeprefix("ROLE_"))


def schema_pb(schema: tuple[SettingDef, ...]) -> list[pb.SettingDefinition]:
    return [
        pb.SettingDefinition(
            name=setting.name,
            label=setting.label,
            description=setting.description,
            type="SETTING_TYPE_" + setting.type.value,
            required=setting.required,
            sensitive=setting.sensitive,
        )
        for setting in schema
    ]


def function_pb(record: FunctionRecord) -> pb.Function:
    message = pb.Function(
        name=names.function_name(record.workspace_id, record.id),
        id=record.id,
        display_name=record.display_name,
        type=function_type_pb(record.type),
        code=record.code,
        settings_schema=schema_pb(record.settings_schema),
        batch=pb.BatchOptions(
            max_count=record.batch_max_count, max_wait_ms=record.batch_max_wait_ms
        ),
        limits=pb.FunctionLimits(
            timeout_ms=record.timeout_ms,
            memory_mib=record.memory_mib,
            no_network=record.no_network,
        ),
        latest_version=record.latest_version,
        deployed_version=record.deployed_version,
        create_time=record.create_time,
        update_time=record.update_time,
    )
    if record.deploy_time is not None:
        message.deploy_time.FromDatetime(record.deploy_time)
    return message


def version_pb(record: VersionRecord, function: FunctionRecord) -> pb.Version:
    message = pb.Version(
        name=names.version_name(function.workspace_id, function.id, record.version),
        version=record.version,
        code=record.code,
        settings_schema=schema_pb(record.settings_schema),
        author=record.author,
        create_time=record.create_time,
        deployed=record.version == function.deployed_version,
        latest=record.version == function.latest_version,
    )
    if record.deploy_time is not None:
        message.deploy_time.FromDatetime(record.deploy_time)
    return message


def instance_pb(
    record: InstanceRecord, *, gateway_base_url: str, webhook_secret: str = ""
) -> pb.Instance:
    message = pb.Instance(
        name=names.instance_name(record.workspace_id, record.id),
        id=record.id,
        display_name=record.display_name,
        function=names.function_name(record.workspace_id, record.function_id),
        function_type=function_type_pb(record.function_type),
        settings=record.settings,
        sensitive_settings=sorted(record.secret_settings),
        enabled=record.enabled,
        sources=[names.instance_name(record.workspace_id, source) for source in record.sources],
        create_time=record.create_time,
        update_time=record.update_time,
    )
    if record.function_type is ex.FunctionType.SOURCE:
        message.webhook_url = f"{gateway_base_url}/v1/sources/{record.id}"
    if record.insert_instance_id:
        message.insert_instance = names.instance_name(
            record.workspace_id, record.insert_instance_id
        )
    if record.webhook_auth is not None:
        message.webhook_auth.CopyFrom(
            pb.WebhookAuth(
                mode="MODE_" + record.webhook_auth.mode,
                header=record.webhook_auth.header,
                has_secret=bool(record.webhook_auth.secret),
                secret=webhook_secret,
            )
        )
    return message


def workspace_pb(record: WorkspaceRecord) -> pb.Workspace:
    return pb.Workspace(
        name=names.workspace_name(record.id),
        id=record.id,
        display_name=record.display_name,
        create_time=record.create_time,
    )


def token_pb(record: TokenRecord, *, secret: str = "") -> pb.Token:
    return pb.Token(
        name=names.token_name(record.workspace_id, record.id),
        id=record.id,
        role="ROLE_" + record.role.value,
        description=record.description,
        secret=secret,
        create_time=record.create_time,
    )


_OUTCOME_LABELS = {o: "OUTCOME_" + o.value for o in ex.Outcome}
# Wire tag of InvocationResult.batch_statuses (length-delimited).
_BATCH_STATUSES_TAG = bytes([ipb.InvocationResult.BATCH_STATUSES_FIELD_NUMBER << 3 | 2])


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _batch_statuses_wire(batch: list[ex.EventResult]) -> bytes:
    """``batch_statuses`` as serialised fields, to be merged into the message in one parse.

    Equal entries of a batch are one shared EventResult (messages.decode_result), encoded
    once: 200 x OK costs one small message and a join instead of 200 ``add()`` calls.
    """
    first = batch[0]
    # All equal (the common case: every event OK): list.count compares identity first.
    if batch[-1] is first and batch.count(first) == len(batch):
        return _status_wire(first) * len(batch)
    parts = []
    previous: ex.EventResult | None = None
    wire = b""
    for item in batch:
        if item is not previous:
            wire = _status_wire(item)
            previous = item
        parts.append(wire)
    return b"".join(parts)


def _status_wire(item: ex.EventResult) -> bytes:
    status = ipb.EventResult(
        outcome=_OUTCOME_LABELS[item.outcome],
        status=item.status,
        error_message=item.error_message,
        error_name=item.error_name,
    )
    if item.returned is not None:
        status.returned = item.returned
    body = status.SerializeToString()
    return _BATCH_STATUSES_TAG + _varint(len(body)) + body


_OUTCOME_NAMES = {outcome: "OUTCOME_" + outcome.value for outcome in ex.Outcome}


def result_pb(result: ex.InvocationResult, *, version: str) -> ipb.InvocationResult:
    message = ipb.InvocationResult(
        outcome=_OUTCOME_NAMES[result.outcome],
        duration_ms=result.duration_ms,
        version=version,
        handlers=result.handlers,
    )
    # Only what there is (each repeated-field keyword costs a conversion, even empty).
    if result.events:
        message.events.extend(result.events)
    if result.objects:
        message.objects.extend(result.objects)
    if result.logs:
        message.logs.extend(result.logs)
    if result.logs_truncated:
        message.logs_truncated = True
    if result.requests:
        message.requests.extend(
            ipb.OutboundRequest(
                method=request.method,
                url=request.url,
                status=request.status,
                duration_ms=request.duration_ms,
                error=request.error,
            )
            for request in result.requests
        )
    if result.returned is not None:
        message.returned = result.returned
    if result.batch:
        message.MergeFromString(_batch_statuses_wire(result.batch))
    if result.error is not None:
        message.error.CopyFrom(
            ipb.UserError(
                name=result.error.name, message=result.error.message, stack=result.error.stack
            )
        )
    return message
