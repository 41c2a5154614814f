"""The default store: one SQLite file (WAL mode) driven from a dedicated thread.

sqlite3 blocks, so every call runs on a single-thread executor that owns the connection; the
event loop never waits on disk. One thread also serialises writers, which SQLite wants anyway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from fnbox.executor.types import FunctionType
from fnbox.server.store import rows
from fnbox.server.store import sqlite_sql as sql
from fnbox.server.store.base import (
    FunctionChanges,
    FunctionRecord,
    InstanceRecord,
    Page,
    Store,
    TokenRecord,
    VersionRecord,
    WorkspaceRecord,
)
from fnbox.server.store.dead_letters import DeadLetterStore, SqlDeadLetterStore
from fnbox.server.store.migrations import MIGRATIONS, Migration, migrate
from fnbox.server.store.observability import ObservabilityStore

R = TypeVar("R")


class SqliteStore(Store):
    """The registry in ``path`` (created with its directory when missing)."""

    def __init__(self, path: Path, *, migrations: tuple[Migration, ...] = MIGRATIONS) -> None:
        self.path = path
        self._migrations = migrations
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fnbox-sqlite")
        self._conn: sqlite3.Connection | None = None
        self.applied_migrations: list[int] = []

    async def _run(
        self, fn: Callable[[sqlite3.Connection], R], *, write: bool = False, registry: bool = True
    ) -> R:
        """``fn`` in one transaction; a committed ``write`` on the ``registry`` tables moves
        ``generation`` (read caches drop their entries)."""

        def in_thread() -> R:
            conn = self._conn
            if conn is None:
                raise RuntimeError("store is not open")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if write and registry:
                self.generation += 1
            return result

        return await asyncio.get_running_loop().run_in_executor(self._thread, in_thread)

    async def open(self) -> None:
        def connect() -> list[int]:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            self._conn = conn
            return migrate(conn, self._migrations)

        loop = asyncio.get_running_loop()
        self.applied_migrations = await loop.run_in_executor(self._thread, connect)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._thread, disconnect)
        self._thread.shutdown(wait=True)

    # PostgresStore inherits these: its _run adapts the same SQL.
    def dead_letters(self) -> DeadLetterStore:
        return SqlDeadLetterStore(self._run_beside)

    def observability(self) -> ObservabilityStore:
        return ObservabilityStore(self._run_beside)

    async def _run_beside(self, fn: Callable[[Any], R], *, write: bool = False) -> R:
        """A transaction on tables beside the registry (usage, logs, dead letters), which no
        read cache holds: its writes (usage flushes, replay claims every second) leave
        ``generation`` alone, so they do not empty the invocation path's caches."""
        return await self._run(fn, write=write, registry=False)

    # Workspaces and tokens.

    async def bootstrap(self, workspace: WorkspaceRecord, token: TokenRecord) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM workspaces LIMIT 1").fetchone():
                return False
            sql.insert_workspace(conn, workspace)
            sql.insert_token(conn, token)
            return True

        return await self._run(tx, write=True)

    async def create_workspace(self, workspace: WorkspaceRecord, token: TokenRecord) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            sql.insert_workspace(conn, workspace)
            sql.insert_token(conn, token)

        await self._run(tx, write=True)

    async def get_workspace(self, workspace_id: str) -> WorkspaceRecord | None:
        def tx(conn: sqlite3.Connection) -> WorkspaceRecord | None:
            row = conn.execute(
                "SELECT id, display_name, create_time FROM workspaces WHERE id = ?",
                (workspace_id,),
            ).fetchone()
            return None if row is None else WorkspaceRecord(row[0], row[1], rows.time(row[2]))

        return await self._run(tx)

    async def create_token(self, token: TokenRecord) -> None:
        await self._run(lambda conn: sql.insert_token(conn, token), write=True)

    async def get_token_by_hash(self, secret_sha256: str) -> TokenRecord | None:
        def tx(conn: sqlite3.Connection) -> TokenRecord | None:
            row = conn.execute(
                f"{rows.TOKEN_SELECT} WHERE secret_sha256 = ?", (secret_sha256,)
            ).fetchone()
            return None if row is None else rows.token(row)

        return await self._run(tx)

    async def list_tokens(self, workspace_id: str) -> list[TokenRecord]:
        def tx(conn: sqlite3.Connection) -> list[TokenRecord]:
            cursor = conn.execute(
                f"{rows.TOKEN_SELECT} WHERE workspace_id = ? ORDER BY seq", (workspace_id,)
            )
            return [rows.token(row) for row in cursor]

        return await self._run(tx)

    async def delete_token(self, workspace_id: str, token_id: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM tokens WHERE workspace_id = ? AND id = ?", (workspace_id, token_id)
            )
            return cursor.rowcount > 0

        return await self._run(tx, write=True)

    # Functions and versions.

    async def create_function(
        self, function: FunctionRecord, *, author: str, request_id: str = ""
    ) -> FunctionRecord:
        def tx(conn: sqlite3.Connection) -> FunctionRecord:
            existing = sql.replayed(conn, function.workspace_id, "function", request_id)
            if existing is not None:
                found = sql.function(conn, existing)
                if found is not None:
                    return found
            conn.execute(
                "INSERT INTO functions (id, workspace_id, display_name, type, batch_max_count,"
                " batch_max_wait_ms, timeout_ms, memory_mib, no_network, latest_version,"
                " deployed_version, create_time, update_time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?)",
                (
                    function.id,
                    function.workspace_id,
                    function.display_name,
                    function.type.value,
                    function.batch_max_count,
                    function.batch_max_wait_ms,
                    function.timeout_ms,
                    function.memory_mib,
                    int(function.no_network),
                    rows.iso(function.create_time),
                    rows.iso(function.update_time),
                ),
            )
            sql.insert_version(
                conn,
                function.id,
                1,
                function.code,
                function.settings_schema,
                author,
                function.create_time,
            )
            sql.remember(conn, function.workspace_id, "function", request_id, function.id)
            created = sql.function(conn, function.id)
            assert created is not None
            return created

        return await self._run(tx, write=True)

    async def get_function(self, function_id: str) -> FunctionRecord | None:
        return await self._run(lambda conn: sql.function(conn, function_id))

    async def list_functions(
        self,
        workspace_id: str,
        *,
        type: FunctionType | None,
        after: int | None,
        limit: int,
    ) -> Page[FunctionRecord]:
        def tx(conn: sqlite3.Connection) -> Page[FunctionRecord]:
            where = "f.workspace_id = ?"
            args: list[object] = [workspace_id]
            if type is not None:
                where += " AND f.type = ?"
                args.append(type.value)
            (total,) = conn.execute(
                f"SELECT count(*) FROM functions f WHERE {where}", args
            ).fetchone()
            found = conn.execute(
                f"{sql.FUNCTION_SELECT} WHERE {where} AND f.seq > ? ORDER BY f.seq LIMIT ?",
                [*args, after or 0, limit + 1],
            ).fetchall()
            return rows.page(found, limit, rows.function, total)

        return await self._run(tx)

    async def update_function(
        self, function_id: str, changes: FunctionChanges
    ) -> FunctionRecord | None:
        return await self._run(
            lambda conn: sql.update_function(conn, function_id, changes), write=True
        )

    async def delete_function(self, function_id: str, *, force: bool) -> bool | None:
        def tx(conn: sqlite3.Connection) -> bool | None:
            if (
                conn.execute("SELECT 1 FROM functions WHERE id = ?", (function_id,)).fetchone()
                is None
            ):
                return None
            has_instances = conn.execute(
                "SELECT 1 FROM instances WHERE function_id = ? LIMIT 1", (function_id,)
            ).fetchone()
            if has_instances and not force:
                return False
            conn.execute("DELETE FROM functions WHERE id = ?", (function_id,))
            return True

        return await self._run(tx, write=True)

    async def get_version(self, function_id: str, version: int) -> VersionRecord | None:
        return await self._run(lambda conn: sql.version(conn, function_id, version))

    async def list_versions(
        self, function_id: str, *, after: int | None, limit: int
    ) -> Page[VersionRecord]:
        def tx(conn: sqlite3.Connection) -> Page[VersionRecord]:
            (total,) = conn.execute(
                "SELECT count(*) FROM versions WHERE function_id = ?", (function_id,)
            ).fetchone()
            found = conn.execute(
                f"{sql.VERSION_SELECT} WHERE function_id = ? AND version < ?"
                " ORDER BY version DESC LIMIT ?",
                (function_id, after if after is not None else 2**62, limit + 1),
            ).fetchall()
            return rows.page(found, limit, rows.version, total, position=1)

        return await self._run(tx)

    async def deploy_version(
        self, function_id: str, version: int, *, when: datetime
    ) -> FunctionRecord | None:
        def tx(conn: sqlite3.Connection) -> FunctionRecord | None:
            cursor = conn.execute(
                "UPDATE versions SET deploy_time = ? WHERE function_id = ? AND version = ?",
                (rows.iso(when), function_id, version),
            )
            if cursor.rowcount == 0:
                return None
            conn.execute(
                "UPDATE functions SET deployed_version = ?, deploy_time = ? WHERE id = ?",
                (version, rows.iso(when), function_id),
            )
            return sql.function(conn, function_id)

        return await self._run(tx, write=True)

    async def restore_version(
        self, function_id: str, version: int, *, author: str
    ) -> VersionRecord | None:
        return await self._run(
            lambda conn: sql.restore_version(conn, function_id, version, author), write=True
        )

    # Instances.

    async def create_instance(
        self, instance: InstanceRecord, *, request_id: str = ""
    ) -> InstanceRecord:
        def tx(conn: sqlite3.Connection) -> InstanceRecord:
            existing = sql.replayed(conn, instance.workspace_id, "instance", request_id)
            if existing is not None:
                found = sql.instance(conn, existing)
                if found is not None:
                    return found
            conn.execute(
                "INSERT INTO instances (id, workspace_id, function_id, display_name, settings,"
                " secret_settings, enabled, insert_instance_id, webhook_auth_mode,"
                " webhook_auth_header, webhook_secret, create_time, update_time)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    instance.id,
                    instance.workspace_id,
                    instance.function_id,
                    instance.display_name,
                    *rows.instance_values(instance),
                    rows.iso(instance.create_time),
                    rows.iso(instance.update_time),
                ),
            )
            sql.set_sources(conn, instance.id, instance.sources)
            sql.remember(conn, instance.workspace_id, "instance", request_id, instance.id)
            created = sql.instance(conn, instance.id)
            assert created is not None
            return created

        return await self._run(tx, write=True)

    async def get_instance(self, instance_id: str) -> InstanceRecord | None:
        return await self._run(lambda conn: sql.instance(conn, instance_id))

    async def list_instances(
        self,
        workspace_id: str,
        *,
        function_id: str | None,
        after: int | None,
        limit: int,
    ) -> Page[InstanceRecord]:
        def tx(conn: sqlite3.Connection) -> Page[InstanceRecord]:
            where = "i.workspace_id = ?"
            args: list[object] = [workspace_id]
            if function_id is not None:
                where += " AND i.function_id = ?"
                args.append(function_id)
            (total,) = conn.execute(
                f"SELECT count(*) FROM instances i WHERE {where}", args
            ).fetchone()
            found = conn.execute(
                f"{sql.INSTANCE_SELECT} WHERE {where} AND i.seq > ? ORDER BY i.seq LIMIT ?",
                [*args, after or 0, limit + 1],
            ).fetchall()
            page = rows.page(found, limit, rows.instance, total)
            return Page(
                [sql.with_sources(conn, item) for item in page.items], page.next_after, total
            )

        return await self._run(tx)

    async def update_instance(self, instance: InstanceRecord) -> InstanceRecord | None:
        def tx(conn: sqlite3.Connection) -> InstanceRecord | None:
            cursor = conn.execute(
                "UPDATE instances SET display_name = ?, settings = ?, secret_settings = ?,"
                " enabled = ?, insert_instance_id = ?, webhook_auth_mode = ?,"
                " webhook_auth_header = ?, webhook_secret = ?, update_time = ? WHERE id = ?",
                (
                    instance.display_name,
                    *rows.instance_values(instance),
                    rows.iso(instance.update_time),
                    instance.id,
                ),
            )
            if cursor.rowcount == 0:
                return None
            sql.set_sources(conn, instance.id, instance.sources)
            return sql.instance(conn, instance.id)

        return await self._run(tx, write=True)

    async def delete_instance(self, instance_id: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,)).rowcount > 0

        return await self._run(tx, write=True)
