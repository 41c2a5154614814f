"""Usage metering and function logs (``ObservabilityService``) over a client :class:`Transport`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date

from fnbox.client.errors import map_rpc_errors
from fnbox.client.transport import Transport
from fnbox.functions.v1 import observability_pb2
from google.type import date_pb2  # type: ignore[import-untyped]

__all__ = ["ObservabilityAPI"]

_SERVICE = "ObservabilityService"


class ObservabilityAPI:
    """Execution time per function per day, and function logs (stored and live).

    Build it on the client's transport: ``ObservabilityAPI(client.transport)``.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def usage(
        self, *, function: str = "", parent: str = "", since: date | None = None
    ) -> observability_pb2.GetUsageResponse:
        """Usage of one ``function`` (name or short id) or of the workspace ``parent`` (empty:
        the token's), per UTC day from ``since`` (default: 30 days ago)."""
        request = observability_pb2.GetUsageRequest(parent=parent, function=function)
        if since is not None:
            request.since.CopyFrom(date_pb2.Date(year=since.year, month=since.month, day=since.day))
        return await self._transport.unary(
            _SERVICE, "GetUsage", request, observability_pb2.GetUsageResponse, idempotent=True
        )

    async def list_logs(
        self, function: str, *, errors_only: bool = False, page_size: int = 0, page_token: str = ""
    ) -> observability_pb2.ListLogsResponse:
        """One page of ``function``'s stored entries (errors and samples), newest first."""
        request = observability_pb2.ListLogsRequest(
            parent=function, errors_only=errors_only, page_size=page_size, page_token=page_token
        )
        return await self._transport.unary(
            _SERVICE, "ListLogs", request, observability_pb2.ListLogsResponse, idempotent=True
        )

    async def iterate_logs(
        self, function: str, *, errors_only: bool = False, limit: int | None = None
    ) -> AsyncIterator[observability_pb2.LogEntry]:
        """``function``'s stored entries, newest first (at most ``limit``)."""
        token = ""
        seen = 0
        while True:
            page_size = min(limit - seen, 1000) if limit is not None else 0
            if limit is not None and page_size <= 0:
                return
            page = await self.list_logs(
                function, errors_only=errors_only, page_size=page_size, page_token=token
            )
            for entry in page.entries:
                yield entry
                seen += 1
            token = page.next_page_token
            if not token:
                return

    async def tail(
        self, function: str, *, errors_only: bool = False, opened: asyncio.Event | None = None
    ) -> AsyncIterator[observability_pb2.LogEntry]:
        """Entries of ``function``'s invocations as they finish, until cancelled; ``opened``
        is set once the server has the tail open (nothing finishing later is missed)."""
        request = observability_pb2.TailLogsRequest(parent=function, errors_only=errors_only)
        call = self._transport.stub(_SERVICE).TailLogs(request, metadata=self._transport.metadata)
        try:
            with map_rpc_errors():
                await call.initial_metadata()
                if opened is not None:
                    opened.set()
                async for entry in call:
                    yield entry
        finally:
            call.cancel()
