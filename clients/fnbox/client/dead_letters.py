"""The dead-letter queue API (``DeadLetterService``) over a client :class:`Transport`."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence

from fnbox.client.paging import every_item
from fnbox.client.transport import Transport
from fnbox.functions.v1 import dead_letters_pb2

__all__ = ["DeadLettersAPI"]

_SERVICE = "DeadLetterService"


class DeadLettersAPI:
    """List, inspect, replay and purge dead letters; record them (platform admins).

    Build it on the client's transport: ``DeadLettersAPI(client.transport)``.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def list(
        self, *, parent: str = "", instance: str = "", page_size: int = 0, page_token: str = ""
    ) -> dead_letters_pb2.ListDeadLettersResponse:
        """One page of dead letters, newest first (only ``instance``'s, when given)."""
        request = dead_letters_pb2.ListDeadLettersRequest(
            parent=parent, instance=instance, page_size=page_size, page_token=page_token
        )
        return await self._transport.unary(
            _SERVICE,
            "ListDeadLetters",
            request,
            dead_letters_pb2.ListDeadLettersResponse,
            idempotent=True,
        )

    async def iterate(
        self, *, parent: str = "", instance: str = "", page_size: int = 0
    ) -> AsyncIterator[dead_letters_pb2.DeadLetter]:
        """Every dead letter of the workspace (only ``instance``'s, when given)."""
        async for dead_letter in every_item(
            lambda token: self.list(
                parent=parent, instance=instance, page_size=page_size, page_token=token
            ),
            lambda page: page.dead_letters,
        ):
            yield dead_letter

    async def get(self, name: str) -> dead_letters_pb2.DeadLetter:
        """One dead letter (resource name or short id) with its payload, error and logs."""
        request = dead_letters_pb2.GetDeadLetterRequest(name=name)
        return await self._transport.unary(
            _SERVICE, "GetDeadLetter", request, dead_letters_pb2.DeadLetter, idempotent=True
        )

    async def replay(
        self,
        *,
        names: Sequence[str] = (),
        instance: str = "",
        version: int = 0,
        parent: str = "",
    ) -> int:
        """Queue ``names`` (or every dead letter of ``instance``) for replay into ``version``
        (0: the deployed version). Returns how many were queued."""
        request = dead_letters_pb2.ReplayDeadLettersRequest(
            parent=parent, names=list(names), instance=instance, version=version
        )
        response = await self._transport.unary(
            _SERVICE,
            "ReplayDeadLetters",
            request,
            dead_letters_pb2.ReplayDeadLettersResponse,
            idempotent=True,
        )
        return response.queued

    async def purge(
        self,
        *,
        names: Sequence[str] = (),
        instance: str = "",
        all: bool = False,
        parent: str = "",
    ) -> int:
        """Delete ``names``, every dead letter of ``instance``, or ``all``. Returns the count."""
        request = dead_letters_pb2.PurgeDeadLettersRequest(
            parent=parent, names=list(names), instance=instance, all=all
        )
        response = await self._transport.unary(
            _SERVICE,
            "PurgeDeadLetters",
            request,
            dead_letters_pb2.PurgeDeadLettersResponse,
            idempotent=True,
        )
        return response.purged

    async def record(self, dead_letters: Sequence[dead_letters_pb2.DeadLetter]) -> int:
        """Store final failures (platform admins; idempotent by ``DeadLetter.id``)."""
        request = dead_letters_pb2.RecordDeadLettersRequest(dead_letters=list(dead_letters))
        response = await self._transport.unary(
            _SERVICE,
            "RecordDeadLetters",
            request,
            dead_letters_pb2.RecordDeadLettersResponse,
            idempotent=True,
        )
        return response.recorded

    async def claim_replays(
        self, *, limit: int, lease_seconds: int
    ) -> builtins.list[dead_letters_pb2.DeadLetter]:
        """Lease dead letters queued for replay, across workspaces (platform admins)."""
        request = dead_letters_pb2.ClaimReplaysRequest(limit=limit, lease_seconds=lease_seconds)
        response = await self._transport.unary(
            _SERVICE,
            "ClaimReplays",
            request,
            dead_letters_pb2.ClaimReplaysResponse,
            idempotent=False,
        )
        return list(response.dead_letters)
