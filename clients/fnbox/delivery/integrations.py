"""Segment's ``integrations`` object: which destinations an event may reach (SEGMENT-SPEC §1, §6).

An event may carry ``"integrations": {"All": false, "<Fn name> (<Workspace name>)": true}``.
``All`` defaults to true; a destination's own key (exact, case-sensitive) overrides it: ``false``
blocks it, ``true`` or an options object lets it through. A blocked event is never invoked.

The fan-out (:class:`fnbox.delivery.routing.Routes`) decodes an event only when its bytes
contain ``"integrations"``: the events it only forwards stay bytes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from fnbox.delivery import headers as h
from fnbox.delivery.control import ControlPlane

__all__ = ["IntegrationKeys", "allows", "integrations_of", "restricts"]

_MARKER = b'"integrations"'

Integrations = Mapping[str, object]


def integrations_of(event: bytes) -> Integrations | None:
    """The event's ``integrations`` object, or None when it has none (or is not JSON: the
    destination reports that)."""
    if _MARKER not in event:
        return None
    try:
        value = orjson.loads(event)
    except orjson.JSONDecodeError:
        return None
    found = value.get("integrations") if isinstance(value, dict) else None
    return found if isinstance(found, dict) else None


def restricts(integrations: Integrations) -> bool:
    """False when every destination is allowed whatever its key (no lookup needed)."""
    return integrations.get("All") is False or any(v is False for v in integrations.values())


def allows(integrations: Integrations, key: str) -> bool:
    """Whether the destination whose integrations key is ``key`` receives the event."""
    value = integrations.get(key)
    if value is False:
        return False
    if value is True or isinstance(value, dict):
        return True
    return integrations.get("All") is not False


class IntegrationKeys:
    """``"<Fn display name> (<Workspace display name>)"`` of destination instances, each
    display name reused for ``ttl`` seconds (renames take effect within that)."""

    def __init__(self, control: ControlPlane, ttl: float) -> None:
        self._control = control
        self._ttl = ttl
        self._names: dict[str, tuple[float, str]] = {}

    async def key(self, instance: str, function: str) -> str:
        """The key of destination instance ``instance`` (resource names) running ``function``."""
        function_name = await self._display_name(function, self._function)
        workspace_name = await self._display_name(h.workspace_of(instance), self._workspace)
        return f"{function_name} ({workspace_name})"

    async def _display_name(self, name: str, fetch: Callable[[str], Awaitable[str]]) -> str:
        cached = self._names.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        display = await fetch(name)
        self._names[name] = (time.monotonic(), display)
        return display

    async def _function(self, name: str) -> str:
        return (await self._control.get_function(name)).display_name

    async def _workspace(self, name: str) -> str:
        return (await self._control.get_workspace(name)).display_name
