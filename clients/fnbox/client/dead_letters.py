"""The dead-letter queue API (``DeadLetterService``) over a client :class:`Transport`."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar, cast

from fnbox.client.errors import RPCError, map_rpc_errors
from fnbox.client.transport import Transport
from fnbox.functions.v1 import dead_letters_pb2, dead_letters_pb2_grpc
from google.protobuf.message import Message

__all__ = ["DeadLettersAPI"]

ResponseT = TypeVar("ResponseT", bound=Message)


class DeadLettersAPI:
    """List, inspect, replay and purge dead letters; record them (platform admins).

    Build it on the client's transport: ``DeadLettersAPI(client.transport)``.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._stub: Any = None

    async def list(
        self, *, parent: str = "", instance: str = "", page_size: int = 0, page_token: str = ""
    ) -> dead_letters_pb2.ListDeadLettersResponse:
        """One page of dead letters, newest first (only ``instance``'s, when given)."""
        request = dead_letters_pb2.ListDeadLettersRequest(
            parent=parent, instance=instance, page_size=page_size, page_token=page_token
        )
        return await self._call(
            "ListDeadLetters", request, dead_letters_pb2.ListDeadLettersResponse, True
        )

    async def iterate(
        self, *, parent: str = "", instance: str = "", page_size: int = 0
    ) -> AsyncIterator[dead_letters_pb2.DeadLetter]:
        """Every dead letter of the workspace (only ``instance``'s, when given)."""
        token = ""
        while True:
            page = await self.list(
                parent=parent, instance=instance, page_size=page_size, page_token=token
            )
            for dead_letter in page.dead_letters:
                yield dead_letter
            token = page.next_page_token
            if not token:
                return

    async def get(self, name: str) -> dead_letters_pb2.DeadLetter:
        """One dead letter (resource name or short id) with its payload, error and logs."""
        request = dead_letters_pb2.GetDeadLetterRequest(name=name)
        return await self._call("GetDeadLetter", request, dead_letters_pb2.DeadLetter, True)

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
        response = await self._call(
            "ReplayDeadLetters", request, dead_letters_pb2.ReplayDeadLettersResponse, True
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
        response = await self._call(
            "PurgeDeadLetters", request, dead_letters_pb2.PurgeDeadLettersResponse, True
        )
        return response.purged

    async def record(self, dead_letters: Sequence[dead_letters_pb2.DeadLetter]) -> int:
        """Store final failures (platform admins; idempotent by ``DeadLetter.id``)."""
        request = dead_letters_pb2.RecordDeadLettersRequest(dead_letters=list(dead_letters))
        response = await self._call(
            "RecordDeadLetters", request, dead_letters_pb2.RecordDeadLettersResponse, True
        )
        return response.recorded

    async def claim_replays(
        self, *, limit: int, lease_seconds: int
    ) -> builtins.list[dead_letters_pb2.DeadLetter]:
        """Lease dead letters queued for replay, across workspaces (platform admins)."""
        request = dead_letters_pb2.ClaimReplaysRequest(limit=limit, lease_seconds=lease_seconds)
        response = await self._call(
            "ClaimReplays", request, dead_letters_pb2.ClaimReplaysResponse, False
        )
        return list(response.dead_letters)

    async def _call(
        self, method: str, request: Message, response_type: type[ResponseT], idempotent: bool
    ) -> ResponseT:
        if self._stub is None:
            self._stub = dead_letters_pb2_grpc.DeadLetterServiceStub(  # type: ignore[no-untyped-call]
                self._transport.channel
            )
        rpc = getattr(self._stub, method)
        policy = self._transport.retry
        attempt = 1
        while True:
            try:
                with map_rpc_errors():
                    response = await rpc(
                        request,
                        metadata=self._transport.metadata,
                        timeout=self._transport.timeout,
                    )
                return cast(ResponseT, response)
            except RPCError as error:
                if not (idempotent and policy.should_retry(error, attempt)):
                    raise
            await asyncio.sleep(policy.backoff(attempt))
            attempt += 1
