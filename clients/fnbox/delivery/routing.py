"""Which destination instances receive a source's events (Instance.sources), cached, and the
fan-out of events to their ``deliveries.<destination>`` topics (:class:`Routes`).

An event's ``integrations`` object is applied in the fan-out, before any destination or insert
function runs (SEGMENT-SPEC §1): a destination it blocks is not published to at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from fnbox.delivery import headers as h
from fnbox.delivery.busio import Outgoing
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.integrations import IntegrationKeys, allows, integrations_of, restricts
from fnbox.functions.v1 import resources_pb2
from opentelemetry import metrics

__all__ = ["Connections", "Destination", "FanOut", "Routes"]

_filtered = metrics.get_meter("fnbox.pipeline").create_counter(
    "fnbox.delivery.filtered",
    unit="1",
    description="Events not routed to a connected destination, by reason (integrations: the "
    "event's integrations object blocks that destination).",
)


@dataclass(frozen=True, slots=True)
class Destination:
    """A connected, enabled destination instance (names are resource names)."""

    name: str
    id: str
    function: str


_Table = tuple[float, dict[str, list[Destination]]]
"""When a workspace was listed, and its sources' destinations."""


class Connections:
    """``destinations(source)`` from the source's workspace listing, reused ``ttl`` seconds.

    A destination instance lists the sources it receives from; insert instances are not
    routed to directly (they run in front of a destination through its insert_instance).
    """

    def __init__(self, control: ControlPlane, ttl: float) -> None:
        self._control = control
        self._ttl = ttl
        self._by_workspace: dict[str, _Table] = {}
        self._loading: dict[str, asyncio.Future[_Table]] = {}

    async def destinations(self, source: str) -> list[Destination]:
        workspace = h.workspace_of(source)
        entry = self._by_workspace.get(workspace)
        if entry is None or time.monotonic() - entry[0] >= self._ttl:
            entry = await self._refresh(workspace)
        return entry[1].get(source, [])

    async def _refresh(self, workspace: str) -> _Table:
        # One listing per workspace at a time: the source processor routes many webhooks at
        # once, and each would otherwise list the workspace again when the entry expires.
        loading = self._loading.get(workspace)
        if loading is None:
            loading = self._loading[workspace] = asyncio.ensure_future(self._fetch(workspace))
            loading.add_done_callback(lambda done: self._loaded(workspace, done))
        return await asyncio.shield(loading)

    async def _fetch(self, workspace: str) -> _Table:
        entry = (time.monotonic(), await self._load(workspace))
        self._by_workspace[workspace] = entry
        return entry

    def _loaded(self, workspace: str, done: asyncio.Future[_Table]) -> None:
        del self._loading[workspace]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone (it is theirs to raise)

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


@dataclass(frozen=True, slots=True)
class FanOut:
    """The messages events become, by ``deliveries.<destination>`` topic, and how many
    (event, connected destination) pairs their integrations objects blocked."""

    by_topic: dict[str, list[Outgoing]]
    filtered: int

    def count_filtered(self) -> None:
        """Add the blocked pairs to ``fnbox.delivery.filtered`` (once the fan-out is durable)."""
        if self.filtered:
            _filtered.add(self.filtered, {"reason": "integrations"})


class Routes:
    """:meth:`fan_out`: what the router publishes for events it consumes, and what the source
    processor publishes directly when delivery runs in its process (no ``events.*`` hop)."""

    def __init__(self, connections: Connections, keys: IntegrationKeys) -> None:
        self._connections = connections
        self._keys = keys

    async def fan_out(self, events: Iterable[Outgoing]) -> FanOut:
        """One message per event and allowed destination: the event's headers plus INSTANCE
        (the destination), dedup id = the event's (its messageId). Raises what the routing
        lookups raise (control unreachable): nothing may be acknowledged then."""
        by_topic: dict[str, list[Outgoing]] = {}
        filtered = 0
        for event in events:
            destinations = await self._connections.destinations(event.headers[h.SOURCE])
            allowed = await self._allowed(event.data, destinations)
            filtered += len(destinations) - len(allowed)
            for destination in allowed:
                headers = dict(event.headers)
                headers[h.INSTANCE] = destination.name
                by_topic.setdefault(h.topic(h.DELIVERIES, destination.name), []).append(
                    Outgoing(event.data, headers, event.dedup_id)
                )
        return FanOut(by_topic, filtered)

    async def _allowed(self, event: bytes, destinations: list[Destination]) -> list[Destination]:
        """The destinations the event's integrations object lets through (all without one)."""
        if not destinations:
            return destinations
        integrations = integrations_of(event)
        if integrations is None or not restricts(integrations):
            return destinations
        return [
            d
            for d in destinations
            if allows(integrations, await self._keys.key(d.name, d.function))
        ]
