"""Output of the CLI: aligned tables, ``key: value`` blocks and JSON.

JSON is the proto3 JSON mapping (camelCase keys) with JSON payload bytes (settings, events)
embedded as JSON values instead of base64.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TextIO, cast

from fnbox.functions.v1 import resources_pb2
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = [
    "Output",
    "OutputMode",
    "decode_json",
    "enum_label",
    "function_type_label",
    "message_json",
    "pretty_json",
    "timestamp",
]

OutputMode = Literal["table", "json"]


class Output:
    """Where and how a command prints its result."""

    def __init__(self, mode: OutputMode, stream: TextIO) -> None:
        self.mode: OutputMode = mode
        self.stream = stream

    @property
    def json(self) -> bool:
        return self.mode == "json"

    def line(self, text: str = "") -> None:
        """One line of human output."""
        self.stream.write(text + "\n")

    def emit_json(self, value: Any) -> None:
        """One JSON document, indented."""
        self.stream.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")

    def table(
        self, headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = ""
    ) -> None:
        """An aligned table with a header row; the last column is not padded. With no rows,
        ``empty`` instead (when given), a sentence that says so and what to do."""
        all_rows = [list(headers), *(list(row) for row in rows)]
        if len(all_rows) == 1 and empty:
            self.line(empty)
            return
        widths = [max(len(row[i]) for row in all_rows) for i in range(len(headers))]
        for row in all_rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
            self.line("  ".join([*cells, row[-1]]).rstrip())

    def fields(self, pairs: Iterable[tuple[str, str]]) -> None:
        """``key: value`` lines with the values aligned; multi-line values are indented."""
        items = [(key, value) for key, value in pairs]
        width = max((len(key) for key, _ in items), default=0) + 2
        for key, value in items:
            first, *rest = value.split("\n") if value else [""]
            self.line(f"{key + ':':<{width}}{first}".rstrip())
            for extra in rest:
                self.line(f"{'':<{width}}{extra}".rstrip())


def message_json(message: Message) -> dict[str, Any]:
    """``message`` as proto3 JSON with every field shown and JSON bytes decoded."""
    data = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _decode_bytes_fields(message, data)
    return data


def _decode_bytes_fields(message: Message, data: dict[str, Any]) -> None:
    for field in cast(list[FieldDescriptor], message.DESCRIPTOR.fields):
        if field.json_name not in data:
            continue
        value = getattr(message, field.name)
        repeated = field.is_repeated
        if field.type == FieldDescriptor.TYPE_BYTES:
            data[field.json_name] = (
                [decode_json(item) for item in value] if repeated else decode_json(value)
            )
        elif field.type == FieldDescriptor.TYPE_MESSAGE and not _is_map(field):
            if repeated:
                for item, item_data in zip(value, data[field.json_name], strict=True):
                    _decode_bytes_fields(item, item_data)
            elif isinstance(data[field.json_name], dict):
                _decode_bytes_fields(value, data[field.json_name])


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def decode_json(data: bytes) -> Any:
    """JSON bytes as a value; empty bytes as None; non-JSON bytes as text."""
    if not data:
        return None
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return data.decode("utf-8", errors="replace")


def pretty_json(data: bytes) -> str:
    """JSON bytes indented for people (text that is not JSON is shown as it is)."""
    value = decode_json(data)
    if isinstance(value, str) and not data.lstrip().startswith(b'"'):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def timestamp(value: Timestamp) -> str:
    """A timestamp as ``2024-05-01 12:00:00Z``, or ``-`` when unset."""
    if not value.seconds and not value.nanos:
        return "-"
    return value.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ")


def enum_label(name: str, prefix: str) -> str:
    """``FUNCTION_TYPE_INSERT_SOURCE`` → ``insert-source`` (the CLI's spelling)."""
    return name.removeprefix(prefix).lower().replace("_", "-")


def function_type_label(value: resources_pb2.FunctionType) -> str:
    """``FUNCTION_TYPE_INSERT_SOURCE`` → ``insert-source``; ``-`` when unspecified."""
    if not value:
        return "-"
    return enum_label(resources_pb2.FunctionType.Name(value), "FUNCTION_TYPE_")
