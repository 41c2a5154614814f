"""Ordered SQLite schema migrations, applied once each and recorded in ``schema_migrations``."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from fnbox.server.store.dead_letters import SQLITE_MIGRATION as SQLITE_DEAD_LETTERS
from fnbox.server.store.observability import SQLITE_MIGRATION as SQLITE_OBSERVABILITY

# Per-function "no network" (FunctionLimits.no_network); same DDL on SQLite and PostgreSQL.
NO_NETWORK_MIGRATION = "ALTER TABLE functions ADD COLUMN no_network INTEGER NOT NULL DEFAULT 0"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "registry",
        """
        CREATE TABLE workspaces (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            create_time TEXT NOT NULL
        );
        CREATE TABLE tokens (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            function_id TEXT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
            display_name TEXT NOT NULL,
            settings BLOB NOT NULL,
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
    Migration(2, "dead_letters", SQLITE_DEAD_LETTERS),
    Migration(3, "observability", SQLITE_OBSERVABILITY),
    Migration(4, "function_no_network", NO_NETWORK_MIGRATION),
)


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded, in order, each in its own transaction.

    Returns the versions applied (empty when the schema is current).
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(migration.version)
    return applied


def _statements(sql: str) -> list[str]:
    # executescript() would commit our transaction first; split instead (no ';' in our DDL
    # literals).
    return [part.strip() for part in sql.split(";") if part.strip()]
