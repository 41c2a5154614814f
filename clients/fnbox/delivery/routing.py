"""Which destination instances receive a source's events (Instance.sources), cached."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fnbox.delivery import headers as h
from fnbox.delivery.control import ControlPlane
from fnbox.functions.v1 import resources_pb2

__all__ = ["Connections", "Destination"]


@dataclass(frozen=True, slots=True)
class Destination:
    """A connected, enabled destination instance (names are resource names)."""

    name: str
    id: str
    function: str


class Connections:
    """``destinations(source)`` from the source's workspace listing, reused ``ttl`` seconds.

    A destination instance lists the sources it receives from; insert instances are not
    routed to directly (they run in front of a destination through its insert_instance).
    """

    def __init__(self, control: ControlPlane, ttl: float) -> None:
        self._control = control
        self._ttl = ttl
        self._by_workspace: dict[str, tuple[float, dict[str, list[Destination]]]] = {}

    async def destinations(self, source: str) -> list[Destination]:
        workspace = h.workspace_of(source)
        entry = self._by_workspace.get(workspace)
        if entry is None or time.monotonic() - entry[0] >= self._ttl:
            entry = (time.monotonic(), await self._load(workspace))
            self._by_workspace[workspace] = entry
        return entry[1].get(source, [])

    async def _load(self, workspace: str) -> dict[str, list[Destination]]:
        table: dict[str, list[Destination]] = {}
        for instance in await self._control.list_instances(workspace):
            if not instance.enabled:
                continue
            if instance.function_type != resources_pb2.FUNCTION_TYPE_DESTINATION:
                continue
            for source in instance.sources:
                full = source if "/" in source else f"{workspace}/instances/{source}"
                table.setdefault(full, []).append(
                    Destination(instance.name, instance.id, instance.function)
                )
        return table
