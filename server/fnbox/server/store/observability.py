"""The tables of usage metering and function logs.

``function_usage``: execution time, invocations and errors per function per UTC day, added to
by every replica (upserts). ``function_logs``: serialized ``LogEntry`` messages with the
columns queries and pruning need. The SQL is plain enough for SQLite and PostgreSQL alike
(``?`` placeholders; the PostgreSQL store's connection adapts them), so one class serves both
stores: each hands it the function that runs one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol, TypeVar, cast

from fnbox.server.store.base import Page

__all__ = [
    "MIGRATION_SQL",
    "LogRow",
    "ObservabilityStore",
    "UsageRow",
]

R = TypeVar("R")

MIGRATION_SQL = """
CREATE TABLE function_usage (
    workspace_id TEXT NOT NULL,
    function_id TEXT NOT NULL,
    day TEXT NOT NULL,
    execution_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
    invocations BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (function_id, day)
);
CREATE INDEX function_usage_by_workspace ON function_usage(workspace_id, day);
CREATE TABLE function_logs (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    function_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    replica TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    body {blob} NOT NULL
);
CREATE INDEX function_logs_by_function ON function_logs(function_id, kind, seq);
CREATE INDEX function_logs_by_time ON function_logs(created_at)
"""


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One function's usage on one UTC day."""

    workspace_id: str
    function_id: str
    day: date
    execution_ms: float
    invocations: int
    errors: int
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class LogRow:
    """One stored log entry; ``body`` is the serialized ``LogEntry``."""

    id: str
    workspace_id: str
    function_id: str
    kind: int
    replica: str
    created_at: float
    body: bytes
    seq: int = 0


class Transaction(Protocol):
    def __call__(self, fn: Callable[[Any], Any], *, write: bool = False) -> Awaitable[Any]: ...


class ObservabilityStore:
    """Usage and log queries; every method is one transaction."""

    def __init__(self, run: Transaction) -> None:
        self._run_tx = run

    async def _run(self, fn: Callable[[Any], R], *, write: bool = False) -> R:
        return cast(R, await self._run_tx(fn, write=write))

    # Usage.

    async def add_usage(self, rows: Sequence[UsageRow]) -> None:
        """Add ``rows`` to the stored figures of their function and day."""

        def tx(conn: Any) -> None:
            conn.executemany(
                "INSERT INTO function_usage"
                " (workspace_id, function_id, day, execution_ms, invocations, errors)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (function_id, day) DO UPDATE SET"
                " execution_ms = function_usage.execution_ms + excluded.execution_ms,"
                " invocations = function_usage.invocations + excluded.invocations,"
                " errors = function_usage.errors + excluded.errors",
                [
                    (
                        r.workspace_id,
                        r.function_id,
                        r.day.isoformat(),
                        r.execution_ms,
                        r.invocations,
                        r.errors,
                    )
                    for r in rows
                ],
            )

        if rows:
            await self._run(tx, write=True)

    async def usage(
        self, workspace_id: str, *, function_id: str | None, since: date
    ) -> list[UsageRow]:
        """The workspace's (or one function's) usage from ``since`` on, by day and function,
        with the function's display name (empty once it was deleted)."""

        def tx(conn: Any) -> list[UsageRow]:
            sql = (
                "SELECT u.workspace_id, u.function_id, u.day, u.execution_ms, u.invocations,"
                " u.errors, COALESCE(f.display_name, '')"
                " FROM function_usage u LEFT JOIN functions f ON f.id = u.function_id"
                " WHERE u.workspace_id = ? AND u.day >= ?"
            )
            params: list[Any] = [workspace_id, since.isoformat()]
            if function_id is not None:
                sql += " AND u.function_id = ?"
                params.append(function_id)
            sql += " ORDER BY u.day, u.function_id"
            return [
                UsageRow(
                    workspace_id=row[0],
                    function_id=row[1],
                    day=date.fromisoformat(row[2]),
                    execution_ms=float(row[3]),
                    invocations=int(row[4]),
                    errors=int(row[5]),
                    display_name=row[6],
                )
                for row in conn.execute(sql, params).fetchall()
            ]

        return await self._run(tx)

    # Logs.

    async def add_logs(self, rows: Sequence[LogRow], *, keep: dict[int, int]) -> None:
        """Insert ``rows``, then keep only the newest ``keep[kind]`` (at least 1) entries of
        each function and kind they touched."""

        def tx(conn: Any) -> None:
            conn.executemany(
                "INSERT INTO function_logs"
                " (id, workspace_id, function_id, kind, replica, created_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.id, r.workspace_id, r.function_id, r.kind, r.replica, r.created_at, r.body)
                    for r in rows
                ],
            )
            for function_id, kind in sorted({(r.function_id, r.kind) for r in rows}):
                conn.execute(
                    "DELETE FROM function_logs WHERE function_id = ? AND kind = ? AND seq < ("
                    " SELECT seq FROM function_logs WHERE function_id = ? AND kind = ?"
                    " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (function_id, kind, function_id, kind, max(keep.get(kind, 1), 1) - 1),
                )

        if rows:
            await self._run(tx, write=True)

    async def list_logs(
        self, function_id: str, *, kinds: Sequence[int], after: int | None, limit: int
    ) -> Page[LogRow]:
        """Newest first; ``after`` is the seq the previous page ended with."""

        def tx(conn: Any) -> Page[LogRow]:
            marks = ", ".join("?" for _ in kinds)
            sql = f"{_LOG_SELECT} WHERE function_id = ? AND kind IN ({marks})"
            params: list[Any] = [function_id, *kinds]
            if after is not None:
                sql += " AND seq < ?"
                params.append(after)
            sql += " ORDER BY seq DESC LIMIT ?"
            params.append(limit + 1)
            found = [_log_row(row) for row in conn.execute(sql, params).fetchall()]
            more = len(found) > limit
            items = found[:limit]
            return Page(items, items[-1].seq if more and items else None, 0)

        return await self._run(tx)

    async def logs_after(
        self, function_id: str, *, after: int, not_replica: str, kinds: Sequence[int]
    ) -> list[LogRow]:
        """Entries of ``function_id`` stored after seq ``after`` by other replicas, oldest
        first (what a live tail has not seen)."""

        def tx(conn: Any) -> list[LogRow]:
            marks = ", ".join("?" for _ in kinds)
            sql = (
                f"{_LOG_SELECT} WHERE function_id = ? AND seq > ? AND replica <> ?"
                f" AND kind IN ({marks}) ORDER BY seq LIMIT 500"
            )
            rows = conn.execute(sql, [function_id, after, not_replica, *kinds]).fetchall()
            return [_log_row(row) for row in rows]

        return await self._run(tx)

    async def last_log_seq(self) -> int:
        """The highest seq stored so far (0 for none)."""

        def tx(conn: Any) -> int:
            row = conn.execute("SELECT MAX(seq) FROM function_logs").fetchone()
            return int(row[0] or 0)

        return await self._run(tx)

    async def prune_logs(self, *, before: float) -> int:
        """Delete entries created before ``before`` (epoch seconds); returns how many."""

        def tx(conn: Any) -> int:
            cursor = conn.execute("DELETE FROM function_logs WHERE created_at < ?", (before,))
            return int(cursor.rowcount or 0)

        return await self._run(tx, write=True)

    # Gauges.

    async def dead_letter_counts(self) -> dict[str, int]:
        """Dead letters per workspace."""

        def tx(conn: Any) -> dict[str, int]:
            rows = conn.execute(
                "SELECT workspace_id, COUNT(*) FROM dead_letters GROUP BY workspace_id"
            ).fetchall()
            return {str(row[0]): int(row[1]) for row in rows}

        return await self._run(tx)


_LOG_SELECT = (
    "SELECT seq, id, workspace_id, function_id, kind, replica, created_at, body FROM function_logs"
)


def _log_row(row: Sequence[Any]) -> LogRow:
    return LogRow(
        seq=int(row[0]),
        id=row[1],
        workspace_id=row[2],
        function_id=row[3],
        kind=int(row[4]),
        replica=row[5],
        created_at=float(row[6]),
        body=bytes(row[7]),
    )
