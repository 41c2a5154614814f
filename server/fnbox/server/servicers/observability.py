"""ObservabilityService: usage (GetUsage) and function logs (ListLogs, TailLogs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import grpc
from fnbox.functions.v1 import observability_pb2 as opb
from fnbox.server import names
from fnbox.server.auth import Principal
from fnbox.server.errors import InvalidArgument, NotFound
from fnbox.server.observability.service import Observability
from fnbox.server.servicers.base import Deps, Servicer, abort, authorize, rpc
from fnbox.server.store.base import FunctionRecord, Role
from google.type import date_pb2  # type: ignore[import-untyped]

__all__ = ["ObservabilityServicer"]

_TOKEN_KIND = "logs"
_DEFAULT_USAGE_DAYS = 30

TailContext = grpc.aio.ServicerContext[opb.TailLogsRequest, opb.LogEntry]


class ObservabilityServicer(Servicer):
    """Registered with ``observability_pb2_grpc.add_ObservabilityServiceServicer_to_server``."""

    def __init__(self, deps: Deps, observability: Observability) -> None:
        super().__init__(deps)
        self.observability = observability

    @rpc(Role.READ_ONLY)
    async def GetUsage(
        self, request: opb.GetUsageRequest, principal: Principal
    ) -> opb.GetUsageResponse:
        since = _since(request)
        names_by_id: dict[str, str] = {}
        if request.function:
            function = await self._function(principal, request.function)
            workspace_id, function_id = function.workspace_id, function.id
            names_by_id[function.id] = function.display_name
        else:
            workspace_id, function_id = principal.workspace(request.parent), None
        rows = await self.observability.usage_rows(
            workspace_id, function_id=function_id, since=since
        )
        response = opb.GetUsageResponse()
        for row in rows:
            display_name = row.display_name or names_by_id.get(row.function_id, "")
            if not display_name and row.function_id not in names_by_id:
                found = await self.store.get_function(row.function_id)
                display_name = names_by_id[row.function_id] = found.display_name if found else ""
            response.records.add(
                function=names.function_name(row.workspace_id, row.function_id),
                display_name=display_name,
                day=date_pb2.Date(year=row.day.year, month=row.day.month, day=row.day.day),
                execution_ms=row.execution_ms,
                invocations=row.invocations,
                errors=row.errors,
            )
            response.total_execution_ms += row.execution_ms
            response.total_invocations += row.invocations
            response.total_errors += row.errors
        return response

    @rpc(Role.READ_ONLY)
    async def ListLogs(
        self, request: opb.ListLogsRequest, principal: Principal
    ) -> opb.ListLogsResponse:
        function = await self._function(principal, request.parent)
        kinds = [opb.LOG_ENTRY_KIND_ERROR]
        if not request.errors_only:
            kinds.append(opb.LOG_ENTRY_KIND_SAMPLE)
        page = await self.observability.table.list_logs(
            function.id,
            kinds=kinds,
            after=names.decode_page_token(_TOKEN_KIND, request.page_token),
            limit=names.page_size(request.page_size),
        )
        return opb.ListLogsResponse(
            entries=[opb.LogEntry.FromString(row.body) for row in page.items],
            next_page_token=names.next_page_token(_TOKEN_KIND, page.next_after),
        )

    async def TailLogs(
        self, request: opb.TailLogsRequest, context: TailContext
    ) -> AsyncIterator[opb.LogEntry]:
        """Entries of the function's invocations as they finish (see the proto)."""
        try:
            principal = await authorize(self.deps, context, Role.READ_ONLY)
            function = await self._function(principal, request.parent)
        except Exception as exc:
            await abort(context, exc)
        tail = self.observability.logs.open_tail(function.id, errors_only=request.errors_only)
        try:
            # Headers now: the client knows the tail is open before the first entry arrives.
            await context.send_initial_metadata(())
            async for entry in tail.entries():
                yield entry
        finally:
            await tail.close()

    async def _function(self, principal: Principal, value: str) -> FunctionRecord:
        if not value:
            raise InvalidArgument("a function is required", reason="FUNCTION_REQUIRED")
        ref = names.parse_function(value)
        function = await self.store.get_function(ref.id)
        if function is None or not principal.sees(ref, function.workspace_id):
            raise NotFound(value, kind="function")
        return function


def _since(request: opb.GetUsageRequest) -> date:
    if not request.HasField("since") or not request.since.year:
        return datetime.now(UTC).date() - timedelta(days=_DEFAULT_USAGE_DAYS)
    value = request.since
    try:
        return date(value.year, value.month or 1, value.day or 1)
    except ValueError as exc:
        raise InvalidArgument(f"since is not a valid date: {exc}", reason="INVALID_DATE") from exc
