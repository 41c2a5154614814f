"""The SQLite bus's tables and the statements run on them (always in the bus's own thread).

``messages`` holds every retained message (``seq`` is the id; AUTOINCREMENT so an id is never
reused after compaction). A group's progress on a topic is ``groups.cursor`` (everything up to
it has been handed out) plus one ``leases`` row per handed-out, unsettled message, whose
``visible_at`` says when it may be delivered again. Compaction deletes the messages below every
group's low-water mark; a topic no group has consumed yet keeps all its messages.

:meth:`BusTables.retire` deletes a topic's rows once its only group is done with it; the next
publish creates the topic again, under a new id (or, when it had the highest id, the same one).
So a topic id held across transactions may be stale, in this process or another: writes look
the id up by name in their own transaction, and a consumer's probe and lease check that the id
still names its topic before trusting it (``None`` when it does not: look it up again).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

import orjson

__all__ = ["BusTables", "LeasedRow", "StoredItem", "init_schema"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic_id INTEGER NOT NULL,
    data BLOB NOT NULL,
    headers BLOB,
    published_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_topic ON messages (topic_id, seq);
CREATE TABLE IF NOT EXISTS dedup (
    topic_id INTEGER NOT NULL,
    dedup_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (topic_id, dedup_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_by_age ON dedup (created_at);
CREATE TABLE IF NOT EXISTS groups (
    topic_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (topic_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    topic_id INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    visible_at REAL NOT NULL,
    PRIMARY KEY (topic_id, group_name, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_visibility ON leases (topic_id, group_name, visible_at);
"""
# Rows one compaction step deletes at most (messages and dedup ids together): a step runs in
# the writer thread inside a group commit, so its size bounds the stall of every write queued
# behind it: ~8 ms at most here, idle (a step of 10,000 messages per topic: ~30 ms idle, and it
# stalled gateway acks up to ~90 ms under load). 500 was no shorter and cost 40% more in all.
COMPACT_STEP = 1_000


def init_schema(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """WAL mode and the tables; safe to run from several processes at once."""
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


# Plain tuples: one of each per message, built in the event loop and in the bus thread.
StoredItem = tuple[bytes, bytes | None, str | None]
"""A message to store: payload, JSON-encoded headers (or None), dedup id (or None)."""
LeasedRow = tuple[int, bytes, bytes | None, float, int]
"""A leased message as the lease query returns it: seq, payload, JSON-encoded headers (or
None), published_at, attempt."""


class BusTables:
    """Statements on one connection."""

    @staticmethod
    def topic_id(conn: sqlite3.Connection, name: str, *, create: bool) -> int | None:
        # Never cached across transactions: a topic retired meanwhile (by any process) must
        # not be written to under its old id.
        row = conn.execute("SELECT id FROM topics WHERE name = ?", (name,)).fetchone()
        if row is None:
            if not create:
                return None
            row = conn.execute(
                "INSERT INTO topics (name) VALUES (?) RETURNING id", (name,)
            ).fetchone()
        return int(row[0])

    def insert(
        self,
        conn: sqlite3.Connection,
        topic: str,
        items: Sequence[StoredItem],
        *,
        now: float,
        dedup_window: float,
    ) -> list[int]:
        """Store ``items`` (in order) in a few statements whatever their number: one lookup of
        their dedup ids, the sequence numbers assigned here (the write transaction holds the
        database's write lock, and the next one follows AUTOINCREMENT's rule), one multi-row
        insert of the messages and one of the new dedup ids."""
        tid = self.topic_id(conn, topic, create=True)
        assert tid is not None
        known: dict[str, int] = {}
        ids = [dedup_id for _, _, dedup_id in items if dedup_id is not None]
        if ids:
            known.update(
                conn.execute(
                    "SELECT dedup_id, seq FROM dedup WHERE topic_id = ?"
                    " AND dedup_id IN (SELECT value FROM json_each(?)) AND created_at >= ?",
                    (tid, orjson.dumps(ids), now - dedup_window),
                )
            )
        last: int
        (last,) = conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),"
            " COALESCE((SELECT MAX(seq) FROM messages), 0))"
        ).fetchone()
        seqs: list[int] = []
        rows: list[tuple[int, int, bytes, bytes | None, float]] = []
        dedup_rows: list[tuple[int, str, int, float]] = []
        for data, headers, dedup_id in items:
            if dedup_id is not None:
                seen = known.get(dedup_id)
                if seen is not None:
                    seqs.append(seen)
                    continue
            last += 1
            rows.append((last, tid, data, headers, now))
            if dedup_id is not None:
                known[dedup_id] = last
                dedup_rows.append((tid, dedup_id, last, now))
            seqs.append(last)
        if rows:
            conn.executemany(
                "INSERT INTO messages (seq, topic_id, data, headers, published_at)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        if dedup_rows:
            conn.executemany(
                "INSERT OR REPLACE INTO dedup (topic_id, dedup_id, seq, created_at)"
                " VALUES (?, ?, ?, ?)",
                dedup_rows,
            )
        return seqs

    @staticmethod
    def join_group(conn: sqlite3.Connection, tid: int, group: str) -> None:
        """A new group starts before the oldest retained message."""
        conn.execute(
            "INSERT OR IGNORE INTO groups (topic_id, name, cursor) VALUES (?, ?, 0)", (tid, group)
        )

    @staticmethod
    def probe(
        conn: sqlite3.Connection, *, tid: int, topic: str, group: str
    ) -> tuple[bool, float | None] | None:
        """Whether a lease would get something now, and when the next lease becomes visible
        (``None`` when ``tid`` no longer names ``topic``)."""
        now = time.time()
        name, next_visible = conn.execute(
            "SELECT (SELECT name FROM topics WHERE id = ?), MIN(visible_at) FROM leases"
            " WHERE topic_id = ? AND group_name = ?",
            (tid, tid, group),
        ).fetchone()
        if name != topic:
            return None
        if next_visible is not None and next_visible <= now:
            return True, next_visible
        row = conn.execute(
            "SELECT 1 FROM messages WHERE topic_id = ? AND seq > "
            "COALESCE((SELECT cursor FROM groups WHERE topic_id = ? AND name = ?), 0) LIMIT 1",
            (tid, tid, group),
        ).fetchone()
        return row is not None, next_visible

    @staticmethod
    def lease(
        conn: sqlite3.Connection, *, tid: int, topic: str, group: str, batch: int, lease: float
    ) -> list[LeasedRow] | None:
        """Redeliveries that are due first, then messages past the group's cursor (``None``
        when ``tid`` no longer names ``topic``)."""
        row = conn.execute("SELECT name FROM topics WHERE id = ?", (tid,)).fetchone()
        if row is None or row[0] != topic:
            return None
        now = time.time()
        until = now + lease
        # The rows as sqlite3 returns them (LeasedRow tuples, attempt already counted).
        rows: list[LeasedRow] = conn.execute(
            "SELECT l.seq, m.data, m.headers, m.published_at, l.attempt + 1 FROM leases AS l"
            " JOIN messages AS m ON m.seq = l.seq"
            " WHERE l.topic_id = ? AND l.group_name = ? AND l.visible_at <= ?"
            " ORDER BY l.visible_at, l.seq LIMIT ?",
            (tid, group, now, batch),
        ).fetchall()
        if rows:
            conn.executemany(
                "UPDATE leases SET attempt = ?, visible_at = ? WHERE topic_id = ?"
                " AND group_name = ? AND seq = ?",
                [(row[4], until, tid, group, row[0]) for row in rows],
            )
        if len(rows) < batch:
            fresh: list[LeasedRow] = conn.execute(
                "SELECT seq, data, headers, published_at, 1 FROM messages"
                " WHERE topic_id = ? AND seq > COALESCE("
                "  (SELECT cursor FROM groups WHERE topic_id = ? AND name = ?), 0)"
                " ORDER BY seq LIMIT ?",
                (tid, tid, group, batch - len(rows)),
            ).fetchall()
            if fresh:
                conn.executemany(
                    "INSERT INTO leases (topic_id, group_name, seq, attempt, visible_at)"
                    " VALUES (?, ?, ?, 1, ?)",
                    [(tid, group, row[0], until) for row in fresh],
                )
                conn.execute(
                    "INSERT INTO groups (topic_id, name, cursor) VALUES (?, ?, ?)"
                    " ON CONFLICT (topic_id, name) DO UPDATE SET cursor = excluded.cursor",
                    (tid, group, fresh[-1][0]),
                )
                rows.extend(fresh)
        return rows

    @staticmethod
    def settle(conn: sqlite3.Connection, leases: Sequence[tuple[int, str, int]]) -> None:
        """Ack or term of ``(topic id, group, seq)`` leases: the group is done with them."""
        conn.executemany(
            "DELETE FROM leases WHERE topic_id = ? AND group_name = ? AND seq = ?", leases
        )

    @staticmethod
    def postpone(
        conn: sqlite3.Connection, leases: Sequence[tuple[float, int, str, int, int]]
    ) -> None:
        """Nak or in-progress of ``(visible_at, topic id, group, seq, attempt)`` leases, unless
        the message was leased again since (a stale holder)."""
        conn.executemany(
            "UPDATE leases SET visible_at = ? WHERE topic_id = ? AND group_name = ? AND seq = ?"
            " AND attempt = ?",
            leases,
        )

    @staticmethod
    def pending(conn: sqlite3.Connection, tid: int, group: str) -> int:
        (count,) = conn.execute(
            "SELECT (SELECT COUNT(*) FROM messages WHERE topic_id = ? AND seq > COALESCE("
            "  (SELECT cursor FROM groups WHERE topic_id = ? AND name = ?), 0))"
            " + (SELECT COUNT(*) FROM leases WHERE topic_id = ? AND group_name = ?)",
            (tid, tid, group, tid, group),
        ).fetchone()
        return int(count)

    @staticmethod
    def retire(conn: sqlite3.Connection, topic: str, group: str) -> bool:
        """Delete ``topic`` with all its rows if ``group`` is its only group and has nothing
        pending there (run in one write transaction: nothing is published meanwhile). Returns
        whether the topic is gone (also when it did not exist)."""
        tid = BusTables.topic_id(conn, topic, create=False)
        if tid is None:
            return True
        other = conn.execute(
            "SELECT 1 FROM groups WHERE topic_id = ? AND name != ? LIMIT 1", (tid, group)
        ).fetchone()
        if other is not None or BusTables.pending(conn, tid, group):
            return False
        for table in ("messages", "dedup", "leases", "groups"):
            conn.execute(f"DELETE FROM {table} WHERE topic_id = ?", (tid,))
        conn.execute("DELETE FROM topics WHERE id = ?", (tid,))
        return True

    @staticmethod
    def topics(conn: sqlite3.Connection, prefix: str) -> list[str]:
        """Topic names starting with ``prefix`` that still hold messages."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [
            name
            for (name,) in conn.execute(
                "SELECT name FROM topics AS t WHERE name LIKE ? ESCAPE '\\'"
                " AND EXISTS (SELECT 1 FROM messages AS m WHERE m.topic_id = t.id) ORDER BY name",
                (pattern,),
            )
        ]

    @staticmethod
    def compact(
        conn: sqlite3.Connection, *, now: float, dedup_window: float, step: int = COMPACT_STEP
    ) -> tuple[int, bool]:
        """One step of compaction: delete up to ``step`` rows, messages every group of their
        topic has settled first, then expired dedup ids. Returns how many messages went and
        whether more may be left (the step ran out)."""
        deleted = 0
        budget = step
        marks = conn.execute(
            "SELECT g.topic_id, MIN(MIN(g.cursor), COALESCE("
            "  (SELECT MIN(l.seq) - 1 FROM leases AS l WHERE l.topic_id = g.topic_id), g.cursor))"
            " FROM groups AS g GROUP BY g.topic_id"
        ).fetchall()
        for tid, low_water in marks:
            gone = conn.execute(
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                " WHERE topic_id = ? AND seq <= ? ORDER BY seq LIMIT ?)",
                (tid, low_water, budget),
            ).rowcount
            deleted += gone
            budget -= gone
            if budget <= 0:
                return deleted, True
        budget -= conn.execute(
            "DELETE FROM dedup WHERE (topic_id, dedup_id) IN (SELECT topic_id, dedup_id"
            " FROM dedup WHERE created_at < ? LIMIT ?)",
            (now - dedup_window, budget),
        ).rowcount
        return deleted, budget <= 0
