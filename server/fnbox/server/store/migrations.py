"""Ordered schema migrations, applied once each and recorded in ``schema_migrations``.

The tables and columns are the same on SQLite and PostgreSQL (so the SQL that reads and writes
them is shared); only the auto-increment key and the blob type differ, filled in by
:func:`migrations_for`. This module applies them to SQLite; ``postgres_migrations`` to PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from fnbox.server.store.dead_letters import MIGRATION_SQL as DEAD_LETTERS_SQL
from fnbox.server.store.observability import MIGRATION_SQL as OBSERVABILITY_SQL

# Per-function "no network" (FunctionLimits.no_network); same DDL on SQLite and PostgreSQL.
NO_NETWORK_MIGRATION = "ALTER TABLE functions ADD COLUMN no_network INTEGER NOT NULL DEFAULT 0"


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: ``sql`` is one or more statements separated by ``;``."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The statements of ``sql``, one by one (no ';' inside our DDL literals)."""
        return [part.strip() for part in self.sql.split(";") if part.strip()]


# The registry tables; {serial} and {blob} are the dialect's column types.
REGISTRY_SQL = """
        CREATE TABLE workspaces (
            seq {serial},
            id TEXT NOT NULL UNIQUE,
            display_name TEXT NOT NULL,
            create_time TEXT NOT NULL
        );
        CREATE TABLE tokens (
            seq {serial},
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
            seq {serial},
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
            seq {serial},
            id TEXT NOT NULL UNIQUE,
            workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
            function_id TEXT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
            display_name TEXT NOT NULL,
            settings {blob} NOT NULL,
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
        """


def migrations_for(*, serial: str, blob: str) -> tuple[Migration, ...]:
    """Every migration, in order, written with one dialect's auto-increment key and blob type."""
    return (
        Migration(1, "registry", REGISTRY_SQL.format(serial=serial, blob=blob)),
        Migration(2, "dead_letters", DEAD_LETTERS_SQL.format(serial=serial, blob=blob)),
        Migration(3, "observability", OBSERVABILITY_SQL.format(serial=serial, blob=blob)),
        Migration(4, "function_no_network", NO_NETWORK_MIGRATION),
    )


MIGRATIONS = migrations_for(serial="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB")


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
            # Not executescript(): it would commit our transaction first.
            for statement in migration.statements():
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
