"""Store fixtures: ``store`` runs a test on SQLite and on PostgreSQL; ``postgres_url`` is a
fresh database created for the test and dropped after it.

PostgreSQL is expected at ``FNBOX_TEST_POSTGRES_URL`` (default: user postgres on 127.0.0.1:5432,
trust auth). Without it the PostgreSQL cases are skipped, except under ``CI=true`` where its
absence fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fnbox.server.store.base import Store
from fnbox.server.store.postgres import PostgresStore
from fnbox.server.store.sqlite import SqliteStore
from psycopg import sql


def _admin_url() -> str:
    return os.environ.get(
        "FNBOX_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    admin_url = _admin_url()
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {admin_url}: {exc}")
    name = f"fnbox_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, empty registry store of each kind."""
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "registry.db")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
