"""The registry on PostgreSQL, for several control-service replicas sharing one database.

The transactions are :class:`~fnbox.server.store.sqlite.SqliteStore`'s: they are plain SQL over
a DB-API-style connection (``execute(sql, params).fetchone()``), and so is the dead-letter
module's, so this class only supplies the connections. Each transaction runs on a worker thread
with a connection from a ``psycopg_pool.ConnectionPool`` (psycopg 3), so the event loop never
waits on the database and the same synchronous transaction bodies serve both databases; ``?``
placeholders become ``%s`` on the way (the shared SQL has no literal ``?`` or ``%``).

Writes run ``SERIALIZABLE`` and are retried on serialization failures and deadlocks, which
gives replicas the one-writer-at-a-time behaviour SQLite has; reads run ``REPEATABLE READ`` so
a count and its page agree. The schema is :mod:`fnbox.server.store.postgres_migrations`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors
from fnbox.server.store.migrations import Migration
from fnbox.server.store.postgres_migrations import POSTGRES_MIGRATIONS, migrate
from fnbox.server.store.sqlite import SqliteStore
from psycopg_pool import ConnectionPool, PoolTimeout

__all__ = ["PostgresStore", "redacted"]

R = TypeVar("R")

_RETRIES = 8
_WRITE = "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"
_READ = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"


class PostgresStore(SqliteStore):
    """The registry in the PostgreSQL database ``url`` (``postgresql://user@host/db``)."""

    # SqliteStore.__init__ is not called: it would set up a file and an SQLite thread.
    def __init__(
        self,
        url: str,
        *,
        migrations: tuple[Migration, ...] = POSTGRES_MIGRATIONS,
        max_connections: int = 8,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._migrations = migrations
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._workers = ThreadPoolExecutor(
            max_workers=max_connections, thread_name_prefix="fnbox-postgres"
        )
        self.applied_migrations: list[int] = []

    async def open(self) -> None:
        def connect() -> list[int]:
            pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self._max_connections,
                open=False,
                name="fnbox-store",
            )
            try:
                pool.open(wait=True, timeout=self._connect_timeout)
            except PoolTimeout as exc:
                pool.close()
                raise ConnectionError(f"cannot connect to {redacted(self.url)}") from exc
            try:
                with pool.connection() as conn:
                    conn.autocommit = True
                    try:
                        applied = migrate(conn, self._migrations)
                    finally:
                        conn.autocommit = False
            except BaseException:
                pool.close()
                raise
            self._pool = pool
            return applied

        loop = asyncio.get_running_loop()
        self.applied_migrations = await loop.run_in_executor(self._workers, connect)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(self._workers, pool.close)
        self._workers.shutdown(wait=True)

    async def _run(
        self, fn: Callable[[Any], R], *, write: bool = False, registry: bool = True
    ) -> R:
        pool = self._pool
        if pool is None:
            raise RuntimeError("store is not open")
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._workers, _transaction, pool, fn, write)
        if write and registry:
            self.generation += 1
        return result


def _transaction(
    pool: ConnectionPool[psycopg.Connection[Any]], fn: Callable[[Any], R], write: bool
) -> R:
    for attempt in range(1, _RETRIES + 1):
        with pool.connection() as conn:
            try:
                conn.execute(_WRITE if write else _READ)
                result = fn(_Connection(conn))
                conn.commit()
                return result
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                conn.rollback()
                if attempt == _RETRIES:
                    raise
        time.sleep(random.uniform(0, 0.005 * 2**attempt))  # jitter apart the colliding writers
    raise AssertionError("unreachable")


class _Connection:
    """The part of ``sqlite3.Connection`` the shared SQL uses, over a psycopg connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(_placeholders(sql), params or None)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self._conn.cursor()
        batch = list(rows)
        if batch:
            cursor.executemany(_placeholders(sql), batch)
        return cursor


def _placeholders(sql: str) -> str:
    return sql.replace("?", "%s")


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
