"""The dead-letter table: final pipeline failures, kept for inspection, replay and purge.

Each row holds the serialized ``DeadLetter`` message plus the columns queries need. The SQL
is shared by SQLite and PostgreSQL (``?`` placeholders; the PostgreSQL store's connection adapts
them), so one class serves both stores: each hands it the function that runs one transaction.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from fnbox.server.store.base import Page

__all__ = [
    "MIGRATION_SQL",
    "DeadLetterRow",
    "DeadLetterStore",
    "SqlDeadLetterStore",
]

R = TypeVar("R")

MIGRATION_SQL = """
CREATE TABLE dead_letters (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    workspace_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    create_time TEXT NOT NULL,
    replay_pending INTEGER NOT NULL DEFAULT 0,
    replay_version BIGINT NOT NULL DEFAULT 0,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    body {blob} NOT NULL
);
CREATE INDEX dead_letters_by_workspace ON dead_letters(workspace_id, seq);
CREATE INDEX dead_letters_by_instance ON dead_letters(instance_id, seq);
CREATE INDEX dead_letters_replays ON dead_letters(replay_pending, lease_until)
"""

_COLUMNS = "seq, id, workspace_id, instance_id, create_time, replay_pending, replay_version, body"


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One dead letter: ``body`` is the serialized ``DeadLetter`` as recorded."""

    id: str
    workspace_id: str
    instance_id: str
    create_time: datetime
    body: bytes
    replay_pending: bool = False
    replay_version: int = 0
    seq: int = 0


class DeadLetterStore(abc.ABC):
    """Dead-letter queries; every method is one transaction."""

    @abc.abstractmethod
    async def record(self, rows: Sequence[DeadLetterRow]) -> int:
        """Insert or replace by id (a replaced row is no longer queued for replay)."""

    @abc.abstractmethod
    async def get(self, dead_letter_id: str) -> DeadLetterRow | None: ...

    @abc.abstractmethod
    async def list_page(
        self, workspace_id: str, *, instance_id: str | None, after: int | None, limit: int
    ) -> Page[DeadLetterRow]:
        """Newest first; ``after`` is the seq the previous page ended with."""

    @abc.abstractmethod
    async def mark_replay(
        self,
        workspace_id: str | None,
        *,
        ids: Sequence[str] | None,
        instance_id: str | None,
        version: int,
    ) -> list[DeadLetterRow]:
        """Queue the given ids (or the instance's dead letters) for replay; the rows queued."""

    @abc.abstractmethod
    async def claim_replays(self, *, limit: int, lease_seconds: float) -> list[DeadLetterRow]:
        """Lease up to ``limit`` queued rows whose lease expired, across workspaces."""

    @abc.abstractmethod
    async def purge(
        self,
        workspace_id: str | None,
        *,
        ids: Sequence[str] | None,
        instance_id: str | None,
    ) -> int:
        """Delete ids, the instance's rows, or (both None) the workspace's; None workspace
        (platform admins) matches ids in any workspace."""


class SqlDeadLetterStore(DeadLetterStore):
    """The queries over a store's transaction runner (``run(fn, write=True)``); every one runs
    as a write transaction."""

    def __init__(self, run: Callable[..., Awaitable[Any]]) -> None:
        self._run_tx = run

    async def _run(self, fn: Callable[[Any], R]) -> R:
        return cast(R, await self._run_tx(fn, write=True))

    async def record(self, rows: Sequence[DeadLetterRow]) -> int:
        sql = (
            "INSERT INTO dead_letters (id, workspace_id, instance_id, create_time, body)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " body = excluded.body, create_time = excluded.create_time,"
            " replay_pending = 0, replay_version = 0, lease_until = 0"
        )

        def tx(conn: Any) -> int:
            for row in rows:
                conn.execute(
                    sql,
                    (row.id, row.workspace_id, row.instance_id, _iso(row.create_time), row.body),
                )
            return len(rows)

        return await self._run(tx)

    async def get(self, dead_letter_id: str) -> DeadLetterRow | None:
        sql = f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ?"

        def tx(conn: Any) -> DeadLetterRow | None:
            row = conn.execute(sql, (dead_letter_id,)).fetchone()
            return None if row is None else _row(row)

        return await self._run(tx)

    async def list_page(
        self, workspace_id: str, *, instance_id: str | None, after: int | None, limit: int
    ) -> Page[DeadLetterRow]:
        where = "workspace_id = ?"
        args: list[object] = [workspace_id]
        if instance_id:
            where += " AND instance_id = ?"
            args.append(instance_id)
        count_sql = f"SELECT COUNT(*) FROM dead_letters WHERE {where}"
        if after is not None:
            where += " AND seq < ?"
            args.append(after)
        sql = f"SELECT {_COLUMNS} FROM dead_letters WHERE {where} ORDER BY seq DESC LIMIT ?"

        def tx(conn: Any) -> Page[DeadLetterRow]:
            total = conn.execute(count_sql, args[: 2 if instance_id else 1]).fetchone()[0]
            found = [_row(r) for r in conn.execute(sql, (*args, limit + 1)).fetchall()]
            more = len(found) > limit
            found = found[:limit]
            return Page(found, found[-1].seq if more and found else None, int(total))

        return await self._run(tx)

    async def mark_replay(
        self,
        workspace_id: str | None,
        *,
        ids: Sequence[str] | None,
        instance_id: str | None,
        version: int,
    ) -> list[DeadLetterRow]:
        where, args = self._selection(workspace_id, ids, instance_id)
        update = (
            "UPDATE dead_letters SET replay_pending = 1, replay_version = ?, lease_until = 0"
            f" WHERE {where}"
        )
        select = f"SELECT {_COLUMNS} FROM dead_letters WHERE {where} ORDER BY seq"

        def tx(conn: Any) -> list[DeadLetterRow]:
            conn.execute(update, (version, *args))
            return [_row(r) for r in conn.execute(select, args).fetchall()]

        return await self._run(tx)

    async def claim_replays(self, *, limit: int, lease_seconds: float) -> list[DeadLetterRow]:
        select = (
            f"SELECT {_COLUMNS} FROM dead_letters WHERE replay_pending = 1 AND lease_until < ?"
            " ORDER BY seq LIMIT ?"
        )
        lease = "UPDATE dead_letters SET lease_until = ? WHERE id = ?"

        def tx(conn: Any) -> list[DeadLetterRow]:
            now = datetime.now(UTC).timestamp()
            found = [_row(r) for r in conn.execute(select, (now, limit)).fetchall()]
            for row in found:
                conn.execute(lease, (now + lease_seconds, row.id))
            return found

        return await self._run(tx)

    async def purge(
        self,
        workspace_id: str | None,
        *,
        ids: Sequence[str] | None,
        instance_id: str | None,
    ) -> int:
        where, args = self._selection(workspace_id, ids, instance_id)
        sql = f"DELETE FROM dead_letters WHERE {where}"

        def tx(conn: Any) -> int:
            return int(conn.execute(sql, args).rowcount)

        return await self._run(tx)

    @staticmethod
    def _selection(
        workspace_id: str | None, ids: Sequence[str] | None, instance_id: str | None
    ) -> tuple[str, list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        if workspace_id is not None:
            clauses.append("workspace_id = ?")
            args.append(workspace_id)
        if ids is not None:
            clauses.append(f"id IN ({', '.join('?' for _ in ids) or 'NULL'})")
            args.extend(ids)
        if instance_id:
            clauses.append("instance_id = ?")
            args.append(instance_id)
        return " AND ".join(clauses) or "1 = 1", args


def _row(row: Sequence[Any]) -> DeadLetterRow:
    return DeadLetterRow(
        seq=int(row[0]),
        id=row[1],
        workspace_id=row[2],
        instance_id=row[3],
        create_time=datetime.fromisoformat(row[4]),
        replay_pending=bool(row[5]),
        replay_version=int(row[6]),
        body=bytes(row[7]),
    )


def _iso(when: datetime) -> str:
    return when.isoformat()
