"""The schema migrations of :mod:`fnbox.server.store.migrations`, applied to PostgreSQL (same
tables and columns, so the SQL that reads and writes them is shared; timestamps stay ISO-8601
text for the same reason).

Each migration runs in its own transaction under an advisory lock, so replicas that start
together apply it once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from fnbox.server.store.migrations import Migration, migrations_for

__all__ = ["POSTGRES_MIGRATIONS", "migrate"]

# Any constant works; it only has to be the same in every replica.
_MIGRATION_LOCK = 0x666E626F78  # "fnbox"

POSTGRES_MIGRATIONS = migrations_for(serial="BIGSERIAL PRIMARY KEY", blob="BYTEA")


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
            for statement in migration.statements():
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
        applied.append(migration.version)
    return applied
