"""Reading the CLI's input files: events, webhook requests, settings and settings schemas.

Every problem is a :class:`InputError` whose message names the file and, for bad JSON, the
line and column, so the command can print it as one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from fnbox.functions.v1 import invocation_pb2, resources_pb2

__all__ = [
    "InputError",
    "load_event_input",
    "load_request",
    "load_settings",
    "load_settings_schema",
    "read_text",
]

STDIN = "-"
DEFAULT_URL = "http://localhost/"
_REQUEST_KEYS = ("method", "url", "headers", "body")
_SCHEMA_KEYS = ("name", "label", "description", "type", "required", "sensitive")
_SETTING_TYPES = {
    "STRING": resources_pb2.SETTING_TYPE_STRING,
    "BOOLEAN": resources_pb2.SETTING_TYPE_BOOLEAN,
    "ARRAY": resources_pb2.SETTING_TYPE_ARRAY,
    "TEXT_MAP": resources_pb2.SETTING_TYPE_TEXT_MAP,
}


class InputError(Exception):
    """A file given on the command line is missing, unreadable or malformed (exit status 2)."""


def display_name(path: str) -> str:
    """How ``path`` is named in messages (``<stdin>`` for ``-``)."""
    return "<stdin>" if path == STDIN else path


def read_bytes(path: str) -> bytes:
    """The content of ``path``, or of standard input for ``-``."""
    if path == STDIN:
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_text(path: str) -> str:
    """The UTF-8 text of ``path`` (``-`` for standard input)."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{display_name(path)}: not UTF-8 text (byte {exc.start + 1} is invalid)"
        ) from None


def read_json(path: str) -> tuple[Any, bytes]:
    """The parsed JSON value of ``path`` and its raw bytes."""
    raw = read_bytes(path)
    try:
        return json.loads(raw), raw
    except UnicodeDecodeError:
        raise InputError(f"{display_name(path)}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        if not raw.strip():
            raise InputError(f"{display_name(path)}: empty file, expected JSON") from None
        raise InputError(f"{display_name(path)}: invalid JSON at {where}: {exc.msg}") from None


def load_event_input(path: str) -> tuple[Literal["event", "events"], bytes]:
    """One event (a JSON object) or a batch (a JSON array of objects), as JSON bytes.

    The bytes are the file's own: the payload is checked, not re-encoded.
    """
    value, raw = read_json(path)
    if isinstance(value, dict):
        return "event", raw.strip()
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise InputError(
                    f"{display_name(path)}: event #{index} of the batch is "
                    f"{_kind(item)}, expected an object"
                )
        return "events", raw.strip()
    raise InputError(
        f"{display_name(path)}: expected an event (JSON object) or a batch (JSON array), "
        f"got {_kind(value)}"
    )


def load_request(path: str) -> invocation_pb2.WebhookRequest:
    """A webhook request: ``{"method", "url", "headers", "body"}``, all optional.

    A string body is sent as its UTF-8 bytes, any other JSON value serialized; method defaults
    to POST and url to ``http://localhost/``.
    """
    name = display_name(path)
    value, _ = read_json(path)
    if not isinstance(value, dict):
        raise InputError(f"{name}: expected a request object, got {_kind(value)}")
    unknown = sorted(set(value) - set(_REQUEST_KEYS))
    if unknown:
        raise InputError(
            f"{name}: unknown key {unknown[0]!r} in the request "
            f"(expected {', '.join(_REQUEST_KEYS)})"
        )
    method, url = value.get("method", "POST"), value.get("url", DEFAULT_URL)
    if not isinstance(method, str) or not method:
        raise InputError(f"{name}: 'method' must be a non-empty string")
    if not isinstance(url, str) or not url:
        raise InputError(f"{name}: 'url' must be a non-empty string")
    headers = value.get("headers") or {}
    if not isinstance(headers, dict):
        raise InputError(f"{name}: 'headers' must be an object of strings")
    for key, header in headers.items():
        if not isinstance(header, str | int | float) or isinstance(header, bool):
            raise InputError(f"{name}: header {key!r} must be a string")
    return invocation_pb2.WebhookRequest(
        method=method.upper(),
        url=url,
        headers={key: str(header) for key, header in headers.items()},
        body=_body_bytes(value.get("body")),
    )


def load_settings(path: str) -> bytes:
    """Setting values: a JSON object, as bytes."""
    value, raw = read_json(path)
    if not isinstance(value, dict):
        raise InputError(
            f"{display_name(path)}: settings must be a JSON object, got {_kind(value)}"
        )
    return raw.strip()


def load_settings_schema(path: str) -> list[resources_pb2.SettingDefinition]:
    """A settings schema: a JSON array of ``{name, label, description, type, required,
    sensitive}`` with ``type`` among STRING, BOOLEAN, ARRAY, TEXT_MAP (any case)."""
    name = display_name(path)
    value, _ = read_json(path)
    if not isinstance(value, list):
        raise InputError(f"{name}: a settings schema is a JSON array, got {_kind(value)}")
    return [_setting(name, index, item) for index, item in enumerate(value)]


def _setting(name: str, index: int, item: Any) -> resources_pb2.SettingDefinition:
    where = f"{name}: setting #{index}"
    if not isinstance(item, dict):
        raise InputError(f"{where} is {_kind(item)}, expected an object")
    unknown = sorted(set(item) - set(_SCHEMA_KEYS))
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r} (expected {', '.join(_SCHEMA_KEYS)})"
        )
    setting_name = item.get("name")
    if not isinstance(setting_name, str) or not setting_name:
        raise InputError(f"{where}: 'name' must be a non-empty string")
    for key in ("label", "description"):
        if not isinstance(item.get(key, ""), str):
            raise InputError(f"{where} ({setting_name}): {key!r} must be a string")
    for key in ("required", "sensitive"):
        if not isinstance(item.get(key, False), bool):
            raise InputError(f"{where} ({setting_name}): {key!r} must be true or false")
    return resources_pb2.SettingDefinition(
        name=setting_name,
        label=item.get("label", ""),
        description=item.get("description", ""),
        type=_setting_type(f"{where} ({setting_name})", item.get("type", "STRING")),
        required=item.get("required", False),
        sensitive=item.get("sensitive", False),
    )


def _setting_type(where: str, value: Any) -> resources_pb2.SettingType:
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_").removeprefix("SETTING_TYPE_")
        if key in _SETTING_TYPES:
            return _SETTING_TYPES[key]
    raise InputError(f"{where}: 'type' must be one of STRING, BOOLEAN, ARRAY, TEXT_MAP")


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"
