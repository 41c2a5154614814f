"""The SQLite store: migrations, WAL mode, and behaviour the servicers rely on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fnbox.executor.types import FunctionType
from fnbox.server.auth import new_token
from fnbox.server.cache import MISSING, ReadCache
from fnbox.server.store.base import (
    FunctionChanges,
    FunctionRecord,
    InstanceRecord,
    Role,
    SettingDef,
    SettingType,
    Store,
    WorkspaceRecord,
)
from fnbox.server.store.migrations import MIGRATIONS, Migration, migrate
from fnbox.server.store.observability import LogRow, UsageRow
from fnbox.server.store.sqlite import SqliteStore


def _applied(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT version, name, applied_at FROM schema_migrations"))


async def test_fresh_database_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "registry.db"
    store = SqliteStore(path)
    await store.open()
    assert store.applied_migrations == [m.version for m in MIGRATIONS]
    await store.close()
    first = _applied(path)
    assert [row[:2] for row in first] == [(m.version, m.name) for m in MIGRATIONS]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"workspaces", "tokens", "functions", "versions", "instances"} <= tables

    again = SqliteStore(path)
    await again.open()
    assert again.applied_migrations == []
    await again.close()
    assert _applied(path) == first


def test_only_missing_migrations_run_in_order_and_a_failure_rolls_back(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    one = Migration(1, "one", "CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER)")
    two = Migration(2, "two", "ALTER TABLE a ADD COLUMN z TEXT")
    assert migrate(conn, (one,)) == [1]
    assert migrate(conn, (two, one)) == [2]
    assert migrate(conn, (one, two)) == []
    broken = Migration(3, "broken", "CREATE TABLE c (x INTEGER); INSERT INTO missing VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, (one, two, broken))
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "c" not in tables and "b" in tables
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [1, 2]
    conn.close()


def _function(workspace_id: str, code: str = "function a() {}") -> FunctionRecord:
    now = datetime.now(UTC)
    return FunctionRecord(
        id="fn_" + code.encode().hex()[:10],
        workspace_id=workspace_id,
        display_name="f",
        type=FunctionType.DESTINATION,
        code=code,
        settings_schema=(SettingDef("key", SettingType.STRING, sensitive=True),),
        batch_max_count=20,
        batch_max_wait_ms=10_000,
        timeout_ms=0,
        memory_mib=0,
        latest_version=1,
        deployed_version=0,
        create_time=now,
        update_time=now,
    )


async def test_versions_instances_and_bootstrap_round_trip(store: Store) -> None:
    workspace = WorkspaceRecord("ws_a", "A", datetime.now(UTC))
    token, _ = new_token("ws_a", Role.ADMIN, "t", platform_admin=True)
    assert await store.bootstrap(workspace, token)
    other, _ = new_token("ws_b", Role.ADMIN, "t")
    assert not await store.bootstrap(WorkspaceRecord("ws_b", "B", workspace.create_time), other)
    assert await store.get_token_by_hash(token.secret_sha256) == token

    created = await store.create_function(_function("ws_a"), author="me")
    assert (created.latest_version, created.code) == (1, "function a() {}")
    updated = await store.update_function(
        created.id, FunctionChanges(author="me", code="function b() {}")
    )
    assert updated is not None and updated.latest_version == 2
    assert updated.settings_schema == created.settings_schema
    v1 = await store.get_version(created.id, 1)
    assert v1 is not None and v1.code == "function a() {}" and v1.author == "me"
    assert await store.deploy_version(created.id, 5, when=datetime.now(UTC)) is None

    now = datetime.now(UTC)
    instance = InstanceRecord(
        id="in_one",
        workspace_id="ws_a",
        function_id=created.id,
        function_type=FunctionType.DESTINATION,
        display_name="i",
        settings=b'{"a":1}',
        secret_settings={"key": "ciphertext"},
        enabled=True,
        create_time=now,
        update_time=now,
    )
    stored = await store.create_instance(instance, request_id="r")
    assert stored == instance
    assert (
        await store.create_instance(dataclasses.replace(instance, id="in_two"), request_id="r")
        == instance
    )
    assert await store.delete_function(created.id, force=False) is False
    assert await store.delete_function(created.id, force=True) is True
    assert await store.get_instance("in_one") is None
    assert await store.delete_function(created.id, force=True) is None


class _OneFunction:
    """A store holding one function, and a load of that function that counts its calls."""

    def __init__(self, store: SqliteStore, function: FunctionRecord) -> None:
        self.store = store
        self.id = function.id
        self.loads = 0

    async def load(self) -> FunctionRecord | None:
        self.loads += 1
        return await self.store.get_function(self.id)


@contextlib.asynccontextmanager
async def _one_function(path: Path) -> AsyncIterator[_OneFunction]:
    store = SqliteStore(path)
    await store.open()
    try:
        workspace = WorkspaceRecord("ws_a", "A", datetime.now(UTC))
        token, _ = new_token("ws_a", Role.ADMIN, "t")
        await store.create_workspace(workspace, token)
        yield _OneFunction(store, await store.create_function(_function("ws_a"), author="me"))
    finally:
        await store.close()


async def test_read_cache_misses_in_flight_share_one_load_until_a_write(tmp_path: Path) -> None:
    async with _one_function(tmp_path / "registry.db") as fn:
        store, cache = fn.store, ReadCache(fn.store, ttl_s=3600)

        async def name() -> str:
            found = await cache.get("function", fn.id, fn.load)
            assert found is not None
            return found.display_name

        assert await asyncio.gather(*(name() for _ in range(20))) == ["f"] * 20
        assert fn.loads == 1
        # A call after a write never joins a load begun before it (the store's one thread
        # runs the first load, then the write, then the second load).
        await store.update_function(fn.id, FunctionChanges(author="x", display_name="mid"))
        before = asyncio.ensure_future(name())
        for _ in range(3):  # until its load is queued on the store's thread
            await asyncio.sleep(0)
        await store.update_function(fn.id, FunctionChanges(author="x", display_name="new"))
        assert await name() == "new"
        assert await before == "mid"
        assert fn.loads == 3
        assert await name() == "new" and fn.loads == 3


async def test_read_cache_peek_answers_only_fresh_entries(tmp_path: Path) -> None:
    async with _one_function(tmp_path / "registry.db") as fn:
        store, cache = fn.store, ReadCache(fn.store, ttl_s=0.2)
        assert cache.peek("function", fn.id) is MISSING
        loaded = await cache.get("function", fn.id, fn.load)
        assert cache.peek("function", fn.id) is loaded and fn.loads == 1
        await store.update_function(fn.id, FunctionChanges(author="x", display_name="g"))
        assert cache.peek("function", fn.id) is MISSING  # a write through this store
        reloaded = await cache.get("function", fn.id, fn.load)
        assert reloaded is not None and reloaded.display_name == "g"
        assert cache.peek("function", fn.id) is reloaded
        await asyncio.sleep(0.25)
        assert cache.peek("function", fn.id) is MISSING  # expired
        assert cache.peek("function", "fn_other") is MISSING
        uncached = ReadCache(store, ttl_s=0)
        await uncached.get("function", fn.id, fn.load)
        assert uncached.peek("function", fn.id) is MISSING


async def test_read_cache_drops_entries_on_local_writes_only(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    here, other_replica = SqliteStore(path), SqliteStore(path)
    await here.open()
    await other_replica.open()
    try:
        workspace = WorkspaceRecord("ws_a", "A", datetime.now(UTC))
        token, _ = new_token("ws_a", Role.ADMIN, "t")
        await here.create_workspace(workspace, token)
        created = await here.create_function(_function("ws_a"), author="me")
        cache = ReadCache(here, ttl_s=3600)
        uncached = ReadCache(here, ttl_s=0)

        async def name(reader: ReadCache) -> str:
            found = await reader.get("function", created.id, lambda: here.get_function(created.id))
            assert found is not None
            return found.display_name

        assert await name(cache) == "f"
        await other_replica.update_function(
            created.id, FunctionChanges(author="x", display_name="elsewhere")
        )
        assert await name(cache) == "f"  # another replica's write: seen after the TTL
        assert await name(uncached) == "elsewhere"
        await here.update_function(created.id, FunctionChanges(author="x", display_name="here"))
        assert await name(cache) == "here"  # a write through this store: dropped at once
    finally:
        await here.close()
        await other_replica.close()


async def test_usage_log_and_dead_letter_writes_keep_the_read_cache(tmp_path: Path) -> None:
    """Only registry writes move ``generation``: the usage flushes, log batches and replay
    claims that run all the time under load must not empty the invocation path's cache."""
    async with _one_function(tmp_path / "registry.db") as fn:
        store, cache = fn.store, ReadCache(fn.store, ttl_s=3600)
        await cache.get("function", fn.id, fn.load)
        observability = store.observability()
        await observability.add_usage(
            [UsageRow("ws_a", fn.id, datetime.now(UTC).date(), 1.5, 1, 0, "f")]
        )
        await observability.add_logs(
            [LogRow("log_1", "ws_a", fn.id, 1, "r", 0.0, b"")], keep={1: 10}
        )
        await store.dead_letters().claim_replays(limit=10, lease_seconds=1)
        await cache.get("function", fn.id, fn.load)
        assert fn.loads == 1
        await store.update_function(fn.id, FunctionChanges(author="x", display_name="g"))
        found = await cache.get("function", fn.id, fn.load)
        assert fn.loads == 2 and found is not None and found.display_name == "g"
