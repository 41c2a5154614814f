"""What only the SQLite bus does: compaction, stale-lease guard, URL options, the file itself."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fnbox.bus import BusError, BusUnavailable, open_bus
from fnbox.bus.jetstream import JetStreamBus, NatsOptions
from fnbox.bus.sqlite import SqliteBus, SqliteOptions
from fnbox.bus.sqlite_tables import COMPACT_STEP, BusTables
from fnbox.bus.sqlite_thread import SqliteThread

from tests.bus.helpers import nothing_within, take
from tests.support.polling import eventually


def _sqlite(tmp_path: Path, **options: float) -> SqliteBus:
    return SqliteBus(str(tmp_path / "bus.db"), namespace="t", options=SqliteOptions(**options))


def _stored(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "bus.db") as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM messages").fetchone()
    return int(count)


async def test_compaction_keeps_what_some_group_still_needs(tmp_path: Path) -> None:
    async with _sqlite(tmp_path, compact_interval=3600) as bus:
        ids = await bus.publish_many("events.c", [(b"%d" % n, None, None) for n in range(6)])
        assert await bus.compact() == 0  # no group has consumed yet: keep everything
        fast = await take(bus, "events.c", "fast", 6)
        slow = await take(bus, "events.c", "slow", 6)
        for delivery in fast:
            await delivery.ack()
        for delivery in slow[:2] + slow[3:4]:
            await delivery.ack()
        assert await bus.compact() == 2  # slow still holds ids[2]; ids[3] goes with it later
        assert _stored(tmp_path) == 4
        await slow[2].nak()
        (again,) = await take(bus, "events.c", "slow", 1)
        assert again.message.id == ids[2] and again.message.data == b"2"
        for delivery in [again, *slow[4:]]:
            await delivery.ack()
        assert await bus.compact() == 4
        assert _stored(tmp_path) == 0
        # A group that joins after compaction starts at what is retained; ids are not reused.
        new_id = await bus.publish("events.c", b"later")
        assert int(new_id) > int(ids[-1])
        (late,) = await take(bus, "events.c", "late", 1)
        assert late.message.id == new_id


async def test_compaction_deletes_a_backlog_in_bounded_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backlog of several steps goes in one compact() call, one bounded write per step (each
    step holds up the writes queued behind it for one step only); expired dedup ids too."""
    steps: list[tuple[int, bool]] = []
    one_step = BusTables.compact

    def recorded(conn: sqlite3.Connection, *, now: float, dedup_window: float) -> tuple[int, bool]:
        before = conn.total_changes
        result = one_step(conn, now=now, dedup_window=dedup_window)
        assert conn.total_changes - before <= COMPACT_STEP
        steps.append(result)
        return result

    monkeypatch.setattr(BusTables, "compact", staticmethod(recorded))
    total = 2 * COMPACT_STEP + 300
    async with _sqlite(tmp_path, compact_interval=3600, dedup_window=0) as bus:
        await bus.publish_many("events.big", [(b"%d" % n, None, f"d{n}") for n in range(total)])
        await bus.ack_many(await take(bus, "events.big", "g", total, batch=1000))
        assert await bus.compact() == total
        assert _stored(tmp_path) == 0
        with sqlite3.connect(tmp_path / "bus.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM dedup").fetchone() == (0,)
    # As many messages as dedup ids, a step full but for the last.
    full_steps, rest = divmod(2 * total, COMPACT_STEP)
    assert rest and [more for _, more in steps] == [True] * full_steps + [False]
    assert sum(deleted for deleted, _ in steps) == total


async def test_publish_and_ack_acks_nothing_when_the_insert_fails(tmp_path: Path) -> None:
    """The acks ride in the insert's transaction: a failed insert leaves the deliveries leased
    (they come back after the lease), as the publish-then-ack order requires."""
    async with _sqlite(tmp_path) as bus:
        await bus.publish("webhooks.f", b"w")
        (webhook,) = await take(bus, "webhooks.f", "g", 1, lease=0.3)
        with sqlite3.connect(tmp_path / "bus.db") as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.data = X'626164'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with pytest.raises(BusError):
            await bus.publish_and_ack("events.f", [(b"bad", None, None)], [webhook])
        (again,) = await take(bus, "webhooks.f", "g", 1, lease=0.3)
        assert again.message.id == webhook.message.id and again.message.attempt == 2
        await bus.publish_and_ack("events.f", [(b"good", None, None)], [again])
        assert await nothing_within(bus, "webhooks.f", "g", 0.6, lease=0.3)  # > the lease
        assert await bus.pending("webhooks.f", "g") == 0


async def test_compaction_runs_by_itself(tmp_path: Path) -> None:
    async with _sqlite(tmp_path, compact_interval=0.05) as bus:
        await bus.publish("events.auto", b"x")
        (delivery,) = await take(bus, "events.auto", "g", 1)
        await delivery.ack()

        async def gone() -> bool:
            return _stored(tmp_path) == 0

        await eventually(gone)


async def test_a_stale_holder_cannot_postpone_a_redelivered_message(tmp_path: Path) -> None:
    async with _sqlite(tmp_path) as bus:
        await bus.publish("events.s", b"x")
        (stale,) = await take(bus, "events.s", "g", 1, lease=0.3)
        (current,) = await take(bus, "events.s", "g", 1, lease=0.3)
        assert current.message.attempt == 2
        await stale.nak(delay=60)  # must not hide the message the current holder leases
        (third,) = await take(bus, "events.s", "g", 1, lease=30, within=5)
        assert third.message.attempt == 3


async def test_the_file_is_in_wal_mode_and_shared_by_two_clients(tmp_path: Path) -> None:
    async with _sqlite(tmp_path, poll_interval=0.02) as one, _sqlite(tmp_path) as two:
        await one.publish("events.w", b"from one")
        (got,) = await take(two, "events.w", "g", 1)
        assert got.message.data == b"from one"
        await got.ack()
        assert await nothing_within(one, "events.w", "g", 0.2)
    with sqlite3.connect(tmp_path / "bus.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    bus = SqliteBus(str(tmp_path / "missing-dir" / "bus.db"))
    with pytest.raises(BusUnavailable):
        await bus.start()


def test_urls_pick_the_backend_and_its_options(tmp_path: Path) -> None:
    bus = open_bus(f"sqlite:///{tmp_path}/b.db?poll_interval=0.5&dedup_window=60", namespace="x")
    assert isinstance(bus, SqliteBus)
    assert bus._path == f"{tmp_path}/b.db"
    assert bus._options == SqliteOptions(poll_interval=0.5, dedup_window=60)
    relative = open_bus("sqlite:///data/bus.db")
    assert isinstance(relative, SqliteBus) and relative._path == "data/bus.db"
    nats = open_bus("nats://127.0.0.1:4222,nats://127.0.0.2:4222?max_ack_pending=5")
    assert isinstance(nats, JetStreamBus)
    assert nats._servers == ["nats://127.0.0.1:4222", "nats://127.0.0.2:4222"]
    assert nats._options == NatsOptions(max_ack_pending=5)
    for bad in ["redis://x", "sqlite://host/x.db", "sqlite:///x.db?nope=1", "nats://h?max_age=x"]:
        with pytest.raises(ValueError):
            open_bus(bad)


async def test_a_failing_write_does_not_undo_the_others_of_its_group(tmp_path: Path) -> None:
    rolled_back: list[bool] = []

    def init(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")

    def put(value: int) -> Callable[[sqlite3.Connection], int]:
        def write(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
            return value

        return write

    def fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES (100)")
        raise ValueError("this one fails")

    db = SqliteThread(
        str(tmp_path / "x.db"),
        busy_timeout=1.0,
        init=init,
        on_rollback=lambda: rolled_back.append(True),
    )
    await db.start()
    try:
        # Submitted in one turn of the loop: one group, one transaction.
        outcomes = await asyncio.gather(
            db.write(put(1), durable=True),
            db.write(fail, durable=False),
            db.write(put(2), durable=False),
            return_exceptions=True,
        )
        assert outcomes[0] == 1 and outcomes[2] == 2
        assert isinstance(outcomes[1], ValueError)
        assert rolled_back  # the cache holders were told
        stored = await db.read(lambda c: [v for (v,) in c.execute("SELECT v FROM t ORDER BY v")])
        assert stored == [1, 2]
    finally:
        await db.stop()


async def test_batches_of_any_size_are_stored_leased_and_settled_whole(tmp_path: Path) -> None:
    """Large batches, some deduplicated, and acks of two groups in one publish_and_ack."""
    async with _sqlite(tmp_path, compact_interval=3600) as bus:
        items = [(b"%d" % n, {"n": str(n)}, f"d{n}") for n in range(150)]
        ids = await bus.publish_many("events.big", items)
        assert len(set(ids)) == 150
        assert await bus.publish_many("events.big", items[:77]) == ids[:77]  # deduplicated
        got = await take(bus, "events.big", "a", 150, batch=127)
        assert [d.message.id for d in got] == ids
        assert [d.message.headers for d in got] == [{"n": str(n)} for n in range(150)]
        other = await take(bus, "events.big", "b", 99, batch=99)
        more = [(b"m%d" % n, None, f"m{n}") for n in range(71)]
        await bus.publish_and_ack("events.more", more, [*got[:149], *other])
        assert await bus.pending("events.big", "a") == 1
        assert await bus.pending("events.big", "b") == 150 - 99
        assert len(await take(bus, "events.more", "a", 71, batch=71)) == 71
        await bus.ack_many(got[149:])
        assert await bus.pending("events.big", "a") == 0
        assert await nothing_within(bus, "events.big", "a", 0.2)
