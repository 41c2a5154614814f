"""Resource ids, resource names (AIP style) and opaque page tokens."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass

import orjson
from fnbox.server.errors import InvalidArgument

WORKSPACE = "ws"
FUNCTION = "fn"
INSTANCE = "in"
TOKEN = "tk"

_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l, o, 0, 1)
_ID = r"[a-z]{2}_[a-z0-9]+"
_FUNCTION_NAME = re.compile(rf"^(?:workspaces/({_ID})/functions/)?({_ID})$")
_VERSION_NAME = re.compile(rf"^(?:workspaces/({_ID})/functions/)?({_ID})/versions/(\d+)$")
_INSTANCE_NAME = re.compile(rf"^(?:workspaces/({_ID})/instances/)?({_ID})$")
_TOKEN_NAME = re.compile(rf"^(?:workspaces/({_ID})/tokens/)?({_ID})$")
_WORKSPACE_NAME = re.compile(rf"^(?:workspaces/)?({_ID})$")


def new_id(prefix: str) -> str:
    """A short random id such as ``fn_7kq2m9xzp4ta`` (60 random bits)."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


@dataclass(frozen=True, slots=True)
class Ref:
    """A parsed reference: the workspace named in it (None for a bare short id) and the id."""

    workspace_id: str | None
    id: str
    version: int = 0


def workspace_name(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}"


def function_name(workspace_id: str, function_id: str) -> str:
    return f"workspaces/{workspace_id}/functions/{function_id}"


def version_name(workspace_id: str, function_id: str, version: int) -> str:
    return f"{function_name(workspace_id, function_id)}/versions/{version}"


def instance_name(workspace_id: str, instance_id: str) -> str:
    return f"workspaces/{workspace_id}/instances/{instance_id}"


def token_name(workspace_id: str, token_id: str) -> str:
    return f"workspaces/{workspace_id}/tokens/{token_id}"


def _parse(pattern: re.Pattern[str], prefix: str, value: str, what: str) -> Ref:
    match = pattern.match(value)
    if match is None or not match.group(2).startswith(prefix + "_"):
        raise InvalidArgument(
            f"{value!r} is not a {what} name or id",
            reason="INVALID_NAME",
            metadata={"name": value},
        )
    return Ref(match.group(1), match.group(2))


def parse_function(value: str) -> Ref:
    return _parse(_FUNCTION_NAME, FUNCTION, value, "function")


def parse_instance(value: str) -> Ref:
    return _parse(_INSTANCE_NAME, INSTANCE, value, "instance")


def parse_token(value: str) -> Ref:
    return _parse(_TOKEN_NAME, TOKEN, value, "token")


def parse_version(value: str) -> Ref:
    match = _VERSION_NAME.match(value)
    if match is None or not match.group(2).startswith(FUNCTION + "_"):
        raise InvalidArgument(
            f"{value!r} is not a version name", reason="INVALID_NAME", metadata={"name": value}
        )
    return Ref(match.group(1), match.group(2), int(match.group(3)))


def parse_parent(value: str) -> str | None:
    """The workspace id of a ``workspaces/{w}`` parent; None when empty (the caller's own)."""
    if not value:
        return None
    match = _WORKSPACE_NAME.match(value)
    if match is None or not match.group(1).startswith(WORKSPACE + "_"):
        raise InvalidArgument(
            f"{value!r} is not a workspace name", reason="INVALID_NAME", metadata={"name": value}
        )
    return match.group(1)


def kind_of(value: str) -> str:
    """``fn``, ``in`` or ``version`` for an invocation target (name or short id)."""
    last = value.rsplit("/", 2)
    if len(last) >= 2 and last[-2] == "versions":
        return "version"
    return last[-1].split("_", 1)[0]


DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(kind: str, after: int) -> str:
    raw = orjson.dumps({"k": kind, "a": after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def next_page_token(kind: str, after: int | None) -> str:
    """The token of the page after ``after``; empty when there is none."""
    return "" if after is None else encode_page_token(kind, after)


def decode_page_token(kind: str, token: str) -> int | None:
    """The position to list after; None for the first page."""
    if not token:
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["k"] == kind and isinstance(data["a"], int):
            return int(data["a"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise InvalidArgument("invalid page_token", reason="INVALID_PAGE_TOKEN")
