"""What the gateway adds to each event a source function emits (Tracking API defaults)."""

from __future__ import annotations

import hashlib
import uuid

import orjson

__all__ = ["LIBRARY", "enrich", "message_id_for"]

LIBRARY = {"name": "fnbox-source-function", "version": "1"}
_NAMESPACE = uuid.UUID("5f1b0c2e-8a1d-4c55-9a3e-6c1f0e2b7d94")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def message_id_for(webhook_id: str, index: int) -> str:
    """Deterministic per (webhook, position): a redelivered webhook emits the same ids.

    ``str(uuid.uuid5(_NAMESPACE, f"{webhook_id}:{index}"))``, computed without UUID objects."""
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{webhook_id}:{index}".encode()).digest())
    raw[6] = raw[6] & 0x0F | 0x50
    raw[8] = raw[8] & 0x3F | 0x80
    x = raw[:16].hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def enrich(event: bytes, *, webhook_id: str, index: int, received_at: str) -> tuple[bytes, str]:
    """The event with ``messageId``, ``receivedAt``, ``timestamp`` and ``context.library``
    filled in where absent; returns it with its messageId."""
    value = orjson.loads(event)
    if not isinstance(value, dict):
        raise ValueError("an emitted event must be a JSON object")
    message_id = value.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        message_id = message_id_for(webhook_id, index)
        value["messageId"] = message_id
    value.setdefault("receivedAt", received_at)
    value.setdefault("timestamp", received_at)
    context = value.get("context")
    if not isinstance(context, dict):
        context = value["context"] = {}
    context.setdefault("library", LIBRARY)
    return orjson.dumps(value), message_id
