"""Checks of what callers send: function fields, settings schemas and instance settings."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from fnbox.executor.settings import ExecutorSettings
from fnbox.functions.v1 import resources_pb2 as pb
from fnbox.server.errors import InvalidArgument
from fnbox.server.secrets import SecretBox
from fnbox.server.store.base import SettingDef, SettingType

MAX_DISPLAY_NAME = 120
MAX_BATCH_COUNT = 1000
DEFAULT_BATCH_COUNT = 20
DEFAULT_BATCH_WAIT_MS = 10_000
MAX_BATCH_WAIT_MS = 600_000
_SETTING_NAME = re.compile(r"^[a-z][a-zA-Z0-9]{0,63}$")


def _invalid(message: str, reason: str, **metadata: str) -> InvalidArgument:
    return InvalidArgument(message, reason=reason, metadata=metadata)


def display_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise _invalid("display_name is required", "DISPLAY_NAME_REQUIRED", field="display_name")
    if len(name) > MAX_DISPLAY_NAME:
        raise _invalid(
            f"display_name is longer than {MAX_DISPLAY_NAME} characters",
            "DISPLAY_NAME_TOO_LONG",
            field="display_name",
        )
    return name


def code(value: str) -> str:
    if not value.strip():
        raise _invalid("code is required", "CODE_REQUIRED", field="code")
    return value


def settings_schema(definitions: Iterable[pb.SettingDefinition]) -> tuple[SettingDef, ...]:
    schema: list[SettingDef] = []
    seen: set[str] = set()
    for definition in definitions:
        name = definition.name
        if not _SETTING_NAME.match(name):
            raise _invalid(
                f"setting name {name!r} is not a camelCase identifier",
                "INVALID_SETTING_NAME",
                setting=name,
            )
        if name in seen:
            raise _invalid(f"setting {name!r} is defined twice", "DUPLICATE_SETTING", setting=name)
        seen.add(name)
        if definition.type == pb.SETTING_TYPE_UNSPECIFIED:
            raise _invalid(f"setting {name!r} has no type", "INVALID_SETTING_TYPE", setting=name)
        schema.append(
            SettingDef(
                name=name,
                type=SettingType(
                    pb.SettingType.Name(definition.type).removeprefix("SETTING_TYPE_")
                ),
                label=definition.label or name,
                description=definition.description,
                required=definition.required,
                sensitive=definition.sensitive,
            )
        )
    return tuple(schema)


def batch_options(batch: pb.BatchOptions) -> tuple[int, int]:
    """(max_count, max_wait_ms) with the defaults filled in."""
    count = batch.max_count or DEFAULT_BATCH_COUNT
    wait = batch.max_wait_ms or DEFAULT_BATCH_WAIT_MS
    if not 1 <= count <= MAX_BATCH_COUNT:
        raise _invalid(
            f"batch.max_count must be between 1 and {MAX_BATCH_COUNT}",
            "INVALID_BATCH",
            field="batch.max_count",
        )
    if not 1 <= wait <= MAX_BATCH_WAIT_MS:
        raise _invalid(
            f"batch.max_wait_ms must be between 1 and {MAX_BATCH_WAIT_MS}",
            "INVALID_BATCH",
            field="batch.max_wait_ms",
        )
    return count, wait


def limits(given: pb.FunctionLimits, executor: ExecutorSettings) -> tuple[int, int]:
    """(timeout_ms, memory_mib); 0 is stored as 0 and means the platform default."""
    if not 0 <= given.timeout_ms <= executor.max_timeout_ms:
        raise _invalid(
            f"limits.timeout_ms must be 0 (the default) to {executor.max_timeout_ms}",
            "INVALID_LIMITS",
            field="limits.timeout_ms",
        )
    if not 0 <= given.memory_mib <= executor.max_memory_mib:
        raise _invalid(
            f"limits.memory_mib must be 0 (the default) to {executor.max_memory_mib}",
            "INVALID_LIMITS",
            field="limits.memory_mib",
        )
    return given.timeout_ms, given.memory_mib


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """``raw`` parsed as a JSON object (empty means ``{}``)."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"{what} is not valid JSON: {exc}", "INVALID_JSON", field=what) from exc
    if not isinstance(value, dict):
        raise _invalid(f"{what} must be a JSON object", "INVALID_JSON", field=what)
    return value


def _check_value(setting: SettingDef, value: object) -> None:
    ok = {
        SettingType.STRING: lambda v: isinstance(v, str),
        SettingType.BOOLEAN: lambda v: isinstance(v, bool),
        SettingType.ARRAY: lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        SettingType.TEXT_MAP: lambda v: (
            isinstance(v, dict) and all(isinstance(i, str) for i in v.values())
        ),
    }[setting.type](value)
    if not ok:
        expected = {
            SettingType.STRING: "a string",
            SettingType.BOOLEAN: "a boolean",
            SettingType.ARRAY: "an array of strings",
            SettingType.TEXT_MAP: "an object of strings",
        }[setting.type]
        raise _invalid(
            f"setting {setting.name!r} must be {expected}",
            "INVALID_SETTING_VALUE",
            setting=setting.name,
        )


def _is_set(value: object) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def instance_settings(
    raw: bytes,
    schema: tuple[SettingDef, ...],
    box: SecretBox,
    *,
    stored_secrets: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Validate setting values against ``schema``; returns the non-sensitive values as a JSON
    object and the sensitive ones encrypted.

    ``raw`` replaces every non-sensitive value. For sensitive ones (when updating, given the
    ``stored_secrets``) an absent key keeps the stored value and ``null`` removes it.
    """
    by_name = {setting.name: setting for setting in schema}
    values = json_object(raw, "settings")
    plain: dict[str, Any] = {}
    secret = {
        name: token
        for name, token in (stored_secrets or {}).items()
        if name in by_name and by_name[name].sensitive
    }
    for name, value in values.items():
        setting = by_name.get(name)
        if setting is None:
            raise _invalid(f"unknown setting {name!r}", "UNKNOWN_SETTING", setting=name)
        if value is None:
            secret.pop(name, None)
            continue
        _check_value(setting, value)
        if setting.sensitive:
            if _is_set(value):
                secret[name] = box.encrypt(orjson.dumps(value))
            else:
                secret.pop(name, None)
        else:
            plain[name] = value
    for setting in schema:
        if setting.required and not _is_set(plain.get(setting.name)) and setting.name not in secret:
            raise _invalid(
                f"setting {setting.name!r} is required", "MISSING_SETTING", setting=setting.name
            )
    return orjson.dumps(plain), secret


def reveal_settings(plain: bytes, secret: Mapping[str, str], box: SecretBox) -> bytes:
    """The settings a function runs with: the plain values plus the decrypted sensitive ones."""
    if not secret:
        return plain or b"{}"
    values = orjson.loads(plain) if plain else {}
    for name, token in secret.items():
        values[name] = orjson.loads(box.decrypt(token))
    return orjson.dumps(values)
