"""Conversions between SQL rows and store records (shared by the SQL stores)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from fnbox.executor.types import FunctionType
from fnbox.server.store.base import (
    FunctionRecord,
    InstanceRecord,
    Page,
    Role,
    SettingDef,
    SettingType,
    TokenRecord,
    VersionRecord,
    WebhookAuthRecord,
)

T = TypeVar("T")
Row = Sequence[Any]

TOKEN_SELECT = (
    "SELECT id, workspace_id, role, secret_sha256, description, create_time, platform_admin"
    " FROM tokens"
)


def iso(when: datetime) -> str:
    return when.isoformat()


def time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def optional_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def schema_json(schema: tuple[SettingDef, ...]) -> str:
    return orjson.dumps([dataclasses.asdict(setting) for setting in schema]).decode()


def schema_of(value: str) -> tuple[SettingDef, ...]:
    return tuple(
        SettingDef(
            name=item["name"],
            type=SettingType(item["type"]),
            label=item["label"],
            description=item["description"],
            required=item["required"],
            sensitive=item["sensitive"],
        )
        for item in orjson.loads(value)
    )


def secrets_json(secrets: dict[str, str]) -> str:
    return orjson.dumps(secrets, option=orjson.OPT_SORT_KEYS).decode()


def token(row: Row) -> TokenRecord:
    return TokenRecord(
        id=row[0],
        workspace_id=row[1],
        role=Role(row[2]),
        secret_sha256=row[3],
        description=row[4],
        create_time=time(row[5]),
        platform_admin=bool(row[6]),
    )


def function(row: Row) -> FunctionRecord:
    """From ``seq, id, workspace_id, display_name, type, code, settings_schema, batch_max_count,
    batch_max_wait_ms, timeout_ms, memory_mib, latest_version, deployed_version, create_time,
    update_time, deploy_time, no_network``."""
    return FunctionRecord(
        id=row[1],
        workspace_id=row[2],
        display_name=row[3],
        type=FunctionType(row[4]),
        code=row[5],
        settings_schema=schema_of(row[6]),
        batch_max_count=row[7],
        batch_max_wait_ms=row[8],
        timeout_ms=row[9],
        memory_mib=row[10],
        latest_version=row[11],
        deployed_version=row[12],
        create_time=time(row[13]),
        update_time=time(row[14]),
        deploy_time=optional_time(row[15]),
        no_network=bool(row[16]),
    )


def version(row: Row) -> VersionRecord:
    """From ``function_id, version, code, settings_schema, author, create_time, deploy_time``."""
    return VersionRecord(
        function_id=row[0],
        version=row[1],
        code=row[2],
        settings_schema=schema_of(row[3]),
        author=row[4],
        create_time=time(row[5]),
        deploy_time=optional_time(row[6]),
    )


def instance(row: Row) -> InstanceRecord:
    """From ``seq, id, workspace_id, function_id, display_name, settings, secret_settings,
    enabled, create_time, update_time, function type, insert_instance_id, webhook_auth_mode,
    webhook_auth_header, webhook_secret`` (sources are read separately)."""
    return InstanceRecord(
        id=row[1],
        workspace_id=row[2],
        function_id=row[3],
        display_name=row[4],
        settings=bytes(row[5]),
        secret_settings=orjson.loads(row[6]),
        enabled=bool(row[7]),
        create_time=time(row[8]),
        update_time=time(row[9]),
        function_type=FunctionType(row[10]),
        insert_instance_id=row[11] or "",
        webhook_auth=WebhookAuthRecord(row[12], row[13], row[14]) if row[12] else None,
    )


def instance_values(record: InstanceRecord) -> tuple[object, ...]:
    """``settings, secret_settings, enabled, insert_instance_id, webhook_auth_mode,
    webhook_auth_header, webhook_secret`` for INSERT/UPDATE."""
    auth = record.webhook_auth
    return (
        record.settings,
        secrets_json(record.secret_settings),
        int(record.enabled),
        record.insert_instance_id or None,
        auth.mode if auth else "",
        auth.header if auth else "",
        auth.secret if auth else "",
    )


def replace_sources(record: InstanceRecord, sources: tuple[str, ...]) -> InstanceRecord:
    return dataclasses.replace(record, sources=sources)


def page(
    found: list[Row],
    limit: int,
    convert: Callable[[Row], T],
    total: int,
    *,
    position: int = 0,
) -> Page[T]:
    """A page from up to ``limit + 1`` rows: the extra row only says that more exist."""
    items = found[:limit]
    more = len(found) > limit
    next_after = int(items[-1][position]) if more and items else None
    return Page([convert(row) for row in items], next_after, total)
