"""Ordered PostgreSQL schema migrations, numbered like the SQLite ones in
:mod:`fnbox.server.store.migrations` (same tables and columns, so the SQL that reads and writes
them is shared; timestamps stay ISO-8601 text for the same reason).

Each migration runs in its own transaction under an advisory lock, so replicas that start
together apply it once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from fnbox.server.store.dead_letters import POSTGRES_MIGRATION as POSTGRES_DEAD_LETTERS
from fnbox.server.store.migrations import NO_NETWORK_MIGRATION, Migration
from fnbox.server.store.observability import POSTGRES_MIGRATION as POSTGRES_OBSERVABILITY

__all__ = ["POSTGRES_MIGRATIONS", "migrate"]

# Any constant works; it only has to be the same in every replica.
_MIGRATION_LOCK = 0x666E626F78  # "fnbox"

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "registry",
        """
        CREATE TABLE workspaces (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            create_time TEXT NOT NULL
        );
        CREATE TABLE tokens (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL UNIQUE,
            description TEXT NOT NULL,
            platform_admin INTEGER NOT NULL DEFAULT 0,
            create_time TEXT NOT NULL
        );
        CREATE INDEX tokens_by_workspace ON tokens(workspace_id, seq);
        CREATE TABLE functions (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            display_name TEXT NOT NULL,
            type TEXT NOT NULL,
            batch_max_count INTEGER NOT NULL,
            batch_max_wait_ms INTEGER NOT NULL,
            timeout_ms INTEGER NOT NULL,
            memory_mib INTEGER NOT NULL,
            latest_version INTEGER NOT NULL,
            deployed_version INTEGER NOT NULL DEFAULT 0,
            create_time TEXT NOT NULL,
            update_time TEXT NOT NULL,
            deploy_time TEXT
        );
        CREATE INDEX functions_by_workspace ON functions(workspace_id, seq);
        CREATE TABLE versions (
            function_id TEXT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            code TEXT NOT NULL,
            settings_schema TEXT NOT NULL,
            author TEXT NOT NULL,
            create_time TEXT NOT NULL,
            deploy_time TEXT,
            PRIMARY KEY (function_id, version)
        );
        CREATE TABLE instances (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            function_id TEXT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
            display_name TEXT NOT NULL,
            settings BYTEA NOT NULL,
            secret_settings TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            insert_instance_id TEXT REFERENCES instances(id) ON DELETE SET NULL,
            webhook_auth_mode TEXT NOT NULL DEFAULT '',
            webhook_auth_header TEXT NOT NULL DEFAULT '',
            webhook_secret TEXT NOT NULL DEFAULT '',
            create_time TEXT NOT NULL,
            update_time TEXT NOT NULL
        );
        CREATE INDEX instances_by_workspace ON instances(workspace_id, seq);
        CREATE INDEX instances_by_function ON instances(function_id, seq);
        CREATE TABLE instance_sources (
            instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
            source_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            PRIMARY KEY (instance_id, source_id)
        );
        CREATE INDEX instance_sources_by_source ON instance_sources(source_id);
        CREATE TABLE idempotency_keys (
            workspace_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            request_id TEXT NOT NULL,
            resource_id TEXT NOT NULL,
            create_time TEXT NOT NULL,
            PRIMARY KEY (workspace_id, kind, request_id)
        );
        """,
    ),
    Migration(2, "dead_letters", POSTGRES_DEAD_LETTERS),
    Migration(3, "observability", POSTGRES_OBSERVABILITY),
    Migration(4, "function_no_network", NO_NETWORK_MIGRATION),
)


def migrate(
    conn: psycopg.Connection[tuple[object, ...]],
    migrations: tuple[Migration, ...] = POSTGRES_MIGRATIONS,
) -> list[int]:
    """Apply the migrations not yet recorded, in order, each in its own transaction; returns
    the versions this call applied. ``conn`` must not be in a transaction."""
    applied: list[int] = []
    with conn.transaction():
        # Under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
    for migration in sorted(migrations, key=lambda m: m.version):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
            ).fetchone()
            if done is not None:
                continue
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
        applied.append(migration.version)
    return applied


def _statements(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";") if part.strip()]
