"""The SQL behind :class:`~fnbox.server.store.sqlite.SqliteStore` (run on its thread)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from fnbox.server.store import rows
from fnbox.server.store.base import (
    FunctionChanges,
    FunctionRecord,
    InstanceRecord,
    SettingDef,
    TokenRecord,
    VersionRecord,
    WorkspaceRecord,
)

FUNCTION_SELECT = (
    "SELECT f.seq, f.id, f.workspace_id, f.display_name, f.type, v.code, v.settings_schema,"
    " f.batch_max_count, f.batch_max_wait_ms, f.timeout_ms, f.memory_mib, f.latest_version,"
    " f.deployed_version, f.create_time, f.update_time, f.deploy_time, f.no_network"
    " FROM functions f JOIN versions v ON v.function_id = f.id AND v.version = f.latest_version"
)
INSTANCE_SELECT = (
    "SELECT i.seq, i.id, i.workspace_id, i.function_id, i.display_name, i.settings,"
    " i.secret_settings, i.enabled, i.create_time, i.update_time, f.type,"
    " i.insert_instance_id, i.webhook_auth_mode, i.webhook_auth_header, i.webhook_secret"
    " FROM instances i JOIN functions f ON f.id = i.function_id"
)
VERSION_SELECT = (
    "SELECT function_id, version, code, settings_schema, author, create_time, deploy_time"
    " FROM versions"
)


def insert_workspace(conn: sqlite3.Connection, workspace: WorkspaceRecord) -> None:
    conn.execute(
        "INSERT INTO workspaces (id, display_name, create_time) VALUES (?, ?, ?)",
        (workspace.id, workspace.display_name, rows.iso(workspace.create_time)),
    )


def insert_token(conn: sqlite3.Connection, token: TokenRecord) -> None:
    conn.execute(
        "INSERT INTO tokens (id, workspace_id, role, secret_sha256, description, platform_admin,"
        " create_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            token.id,
            token.workspace_id,
            token.role.value,
            token.secret_sha256,
            token.description,
            int(token.platform_admin),
            rows.iso(token.create_time),
        ),
    )


def insert_version(
    conn: sqlite3.Connection,
    function_id: str,
    version: int,
    code: str,
    schema: tuple[SettingDef, ...],
    author: str,
    when: datetime,
) -> None:
    conn.execute(
        "INSERT INTO versions (function_id, version, code, settings_schema, author, create_time)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (function_id, version, code, rows.schema_json(schema), author, rows.iso(when)),
    )


def function(conn: sqlite3.Connection, function_id: str) -> FunctionRecord | None:
    row = conn.execute(f"{FUNCTION_SELECT} WHERE f.id = ?", (function_id,)).fetchone()
    return None if row is None else rows.function(row)


def instance(conn: sqlite3.Connection, instance_id: str) -> InstanceRecord | None:
    row = conn.execute(f"{INSTANCE_SELECT} WHERE i.id = ?", (instance_id,)).fetchone()
    return None if row is None else with_sources(conn, rows.instance(row))


def with_sources(conn: sqlite3.Connection, instance: InstanceRecord) -> InstanceRecord:
    sources = conn.execute(
        "SELECT source_id FROM instance_sources WHERE instance_id = ? ORDER BY position",
        (instance.id,),
    ).fetchall()
    return rows.replace_sources(instance, tuple(source for (source,) in sources))


def set_sources(conn: sqlite3.Connection, instance_id: str, sources: tuple[str, ...]) -> None:
    conn.execute("DELETE FROM instance_sources WHERE instance_id = ?", (instance_id,))
    conn.executemany(
        "INSERT INTO instance_sources (instance_id, source_id, position) VALUES (?, ?, ?)",
        [(instance_id, source, position) for position, source in enumerate(sources)],
    )


def replayed(conn: sqlite3.Connection, workspace_id: str, kind: str, request_id: str) -> str | None:
    if not request_id:
        return None
    row = conn.execute(
        "SELECT resource_id FROM idempotency_keys"
        " WHERE workspace_id = ? AND kind = ? AND request_id = ?",
        (workspace_id, kind, request_id),
    ).fetchone()
    return None if row is None else str(row[0])


def remember(
    conn: sqlite3.Connection, workspace_id: str, kind: str, request_id: str, resource_id: str
) -> None:
    if request_id:
        conn.execute(
            "INSERT INTO idempotency_keys"
            " (workspace_id, kind, request_id, resource_id, create_time) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (workspace_id, kind, request_id) DO UPDATE SET"
            " resource_id = excluded.resource_id, create_time = excluded.create_time",
            (workspace_id, kind, request_id, resource_id, rows.iso(datetime.now(UTC))),
        )


def version(conn: sqlite3.Connection, function_id: str, number: int) -> VersionRecord | None:
    row = conn.execute(
        f"{VERSION_SELECT} WHERE function_id = ? AND version = ?", (function_id, number)
    ).fetchone()
    return None if row is None else rows.version(row)


def update_function(
    conn: sqlite3.Connection, function_id: str, changes: FunctionChanges
) -> FunctionRecord | None:
    current = function(conn, function_id)
    if current is None:
        return None
    now = datetime.now(UTC)
    code = current.code if changes.code is None else changes.code
    schema = current.settings_schema if changes.settings_schema is None else changes.settings_schema
    latest = current.latest_version
    if code != current.code or schema != current.settings_schema:
        latest += 1
        insert_version(conn, function_id, latest, code, schema, changes.author, now)

    def pick(new: object, old: object) -> object:
        return old if new is None else new

    conn.execute(
        "UPDATE functions SET display_name = ?, batch_max_count = ?, batch_max_wait_ms = ?,"
        " timeout_ms = ?, memory_mib = ?, no_network = ?, latest_version = ?, update_time = ?"
        " WHERE id = ?",
        (
            pick(changes.display_name, current.display_name),
            pick(changes.batch_max_count, current.batch_max_count),
            pick(changes.batch_max_wait_ms, current.batch_max_wait_ms),
            pick(changes.timeout_ms, current.timeout_ms),
            pick(changes.memory_mib, current.memory_mib),
            int(bool(pick(changes.no_network, current.no_network))),
            latest,
            rows.iso(now),
            function_id,
        ),
    )
    return function(conn, function_id)


def restore_version(
    conn: sqlite3.Connection, function_id: str, number: int, author: str
) -> VersionRecord | None:
    """Copy version ``number`` to a new latest version (always a new one, as Segment does)."""
    source = version(conn, function_id, number)
    current = function(conn, function_id)
    if source is None or current is None:
        return None
    now = datetime.now(UTC)
    latest = current.latest_version + 1
    insert_version(conn, function_id, latest, source.code, source.settings_schema, author, now)
    conn.execute(
        "UPDATE functions SET latest_version = ?, update_time = ? WHERE id = ?",
        (latest, rows.iso(now), function_id),
    )
    return version(conn, function_id, latest)
