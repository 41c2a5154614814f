"""The registry store on both backends: listings, concurrency, dead letters; and what only
PostgreSQL has (its migrations, replicas opening together, selection by URL)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from fnbox.executor.types import FunctionType
from fnbox.functions.v1 import service_pb2 as spb
from fnbox.server.app import make_store
from fnbox.server.auth import new_token
from fnbox.server.settings import StoreSettings
from fnbox.server.store.base import FunctionChanges, FunctionRecord, Role, Store, WorkspaceRecord
from fnbox.server.store.dead_letters import DeadLetterRow
from fnbox.server.store.postgres import PostgresStore, redacted
from fnbox.server.store.postgres_migrations import POSTGRES_MIGRATIONS

from tests.conftest import ServerFactory
from tests.server.helpers import Api


async def _workspace(store: Store, workspace_id: str = "ws_a") -> None:
    token, _ = new_token(workspace_id, Role.ADMIN, "t")
    await store.create_workspace(WorkspaceRecord(workspace_id, "A", datetime.now(UTC)), token)


def _function(function_id: str, workspace_id: str = "ws_a") -> FunctionRecord:
    now = datetime.now(UTC)
    return FunctionRecord(
        id=function_id,
        workspace_id=workspace_id,
        display_name=function_id,
        type=FunctionType.SOURCE if function_id.endswith("s") else FunctionType.DESTINATION,
        code=f"// {function_id}",
        settings_schema=(),
        batch_max_count=20,
        batch_max_wait_ms=10_000,
        timeout_ms=0,
        memory_mib=0,
        latest_version=1,
        deployed_version=0,
        create_time=now,
        update_time=now,
    )


async def test_listings_page_and_filter(store: Store) -> None:
    await _workspace(store)
    await _workspace(store, "ws_b")
    ids = [f"fn_{n}{'s' if n % 3 == 0 else 'd'}" for n in range(7)]
    for function_id in ids:
        await store.create_function(_function(function_id), author="me")
    await store.create_function(_function("fn_other", "ws_b"), author="me")
    pages, after = [], None
    while True:
        page = await store.list_functions("ws_a", type=None, after=after, limit=3)
        pages.append([f.id for f in page.items])
        assert page.total_size == 7
        if page.next_after is None:
            break
        after = page.next_after
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    sources = await store.list_functions("ws_a", type=FunctionType.SOURCE, after=None, limit=10)
    assert [f.id for f in sources.items] == ["fn_0s", "fn_3s", "fn_6s"]
    assert sources.total_size == 3


async def test_concurrent_updates_each_make_a_version(store: Store) -> None:
    await _workspace(store)
    created = await store.create_function(_function("fn_busy"), author="me")
    updates = [
        store.update_function(created.id, FunctionChanges(author=f"a{n}", code=f"// v{n}"))
        for n in range(8)
    ]
    await asyncio.gather(*updates)
    latest = await store.get_function(created.id)
    assert latest is not None and latest.latest_version == 9
    versions = await store.list_versions(created.id, after=None, limit=20)
    assert [v.version for v in versions.items] == list(range(9, 0, -1))
    assert {v.code for v in versions.items[:-1]} == {f"// v{n}" for n in range(8)}


async def test_concurrent_creates_with_one_request_id_make_one_function(store: Store) -> None:
    await _workspace(store)
    attempts = [
        store.create_function(_function(f"fn_try{n}"), author="me", request_id="req-1")
        for n in range(6)
    ]
    results = await asyncio.gather(*attempts)
    assert len({r.id for r in results}) == 1
    listed = await store.list_functions("ws_a", type=None, after=None, limit=10)
    assert [f.id for f in listed.items] == [results[0].id]


async def test_dead_letters_round_trip(store: Store) -> None:
    dead = store.dead_letters()
    when = datetime.now(UTC)
    rows = [
        DeadLetterRow(f"dl_{n}", "ws_a", "in_x" if n < 3 else "in_y", when, b"\x00body%d" % n)
        for n in range(5)
    ]
    assert await dead.record(rows) == 5
    assert await dead.get("dl_1") == dataclasses.replace(rows[1], seq=2)
    page = await dead.list_page("ws_a", instance_id="in_x", after=None, limit=2)
    assert [r.id for r in page.items] == ["dl_2", "dl_1"] and page.total_size == 3
    assert page.next_after is not None
    rest = await dead.list_page("ws_a", instance_id="in_x", after=page.next_after, limit=2)
    assert [r.id for r in rest.items] == ["dl_0"] and rest.next_after is None
    marked = await dead.mark_replay("ws_a", ids=None, instance_id="in_y", version=4)
    assert [(r.id, r.replay_pending, r.replay_version) for r in marked] == [
        ("dl_3", True, 4),
        ("dl_4", True, 4),
    ]
    claimed = await dead.claim_replays(limit=10, lease_seconds=60)
    assert [r.id for r in claimed] == ["dl_3", "dl_4"]
    assert await dead.claim_replays(limit=10, lease_seconds=60) == []  # leased
    assert await dead.purge("ws_a", ids=["dl_0", "dl_3"], instance_id=None) == 2
    assert await dead.purge("ws_other", ids=None, instance_id=None) == 0
    remaining = await dead.list_page("ws_a", instance_id=None, after=None, limit=10)
    assert [r.id for r in remaining.items] == ["dl_4", "dl_2", "dl_1"]


async def test_postgres_migrations_apply_once(postgres_url: str) -> None:
    first = PostgresStore(postgres_url)
    await first.open()
    assert first.applied_migrations == [m.version for m in POSTGRES_MIGRATIONS]
    await first.close()
    again = PostgresStore(postgres_url)
    await again.open()
    assert again.applied_migrations == []
    await again.close()
    with psycopg.connect(postgres_url) as conn:
        recorded = conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
    assert recorded == [(m.version, m.name) for m in POSTGRES_MIGRATIONS]


async def test_replicas_opening_together_migrate_once(postgres_url: str) -> None:
    replicas = [PostgresStore(postgres_url, max_connections=2) for _ in range(4)]
    await asyncio.gather(*(replica.open() for replica in replicas))
    try:
        applied = sorted(v for replica in replicas for v in replica.applied_migrations)
        assert applied == [m.version for m in POSTGRES_MIGRATIONS]
        # What one replica writes, another reads.
        await _workspace(replicas[0])
        assert await replicas[3].get_workspace("ws_a") is not None
    finally:
        await asyncio.gather(*(replica.close() for replica in replicas))


async def test_a_postgresql_url_selects_the_postgres_store(
    postgres_url: str, tmp_path: Path
) -> None:
    store = make_store(StoreSettings(url=postgres_url), tmp_path)
    assert isinstance(store, PostgresStore)
    await store.open()
    try:
        await _workspace(store)
        workspace = await store.get_workspace("ws_a")
        assert workspace is not None
        assert workspace.create_time > datetime.now(UTC) - timedelta(minutes=1)
    finally:
        await store.close()


def test_redacted_hides_the_password() -> None:
    assert redacted("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redacted("postgresql://u@h/db") == "postgresql://u@h/db"


async def test_the_control_service_runs_on_postgres(
    postgres_url: str, server_factory: ServerFactory
) -> None:
    server = await server_factory(store={"url": postgres_url})
    api = Api.of(server)
    created = await api.create_function("on postgres")
    got = await api.functions.GetFunction(
        spb.GetFunctionRequest(name=created.name), metadata=api.metadata
    )
    assert got == created
    with psycopg.connect(postgres_url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM functions").fetchone() or (0,)
    assert count == 1
