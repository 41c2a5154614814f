"""The usage and log tables on SQLite and PostgreSQL: upserts, caps per function, pruning."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fnbox.executor.types import FunctionType
from fnbox.server.store.base import FunctionRecord, Role, Store, TokenRecord, WorkspaceRecord
from fnbox.server.store.observability import LogRow, UsageRow

NOW = datetime.now(UTC)


async def _function(store: Store, function_id: str = "fn_a") -> None:
    await store.create_workspace(
        WorkspaceRecord("ws_a", "A", NOW),
        TokenRecord("tk_a", "ws_a", Role.ADMIN, "hash", "", NOW),
    )
    await store.create_function(
        FunctionRecord(
            function_id,
            "ws_a",
            "Alpha",
            FunctionType.DESTINATION,
            "",
            (),
            0,
            0,
            5000,
            128,
            1,
            0,
            NOW,
            NOW,
        ),
        author="test",
    )


async def test_usage_adds_up_per_function_and_day(store: Store) -> None:
    await _function(store)
    table = store.observability()
    day1, day2 = date(2024, 5, 1), date(2024, 5, 2)
    await table.add_usage([UsageRow("ws_a", "fn_a", day1, 10.5, 2, 1)])
    await table.add_usage(
        [UsageRow("ws_a", "fn_a", day1, 4.5, 1, 0), UsageRow("ws_a", "fn_gone", day2, 1.0, 1, 1)]
    )
    rows = await table.usage("ws_a", function_id=None, since=day1)
    assert [(r.function_id, r.day, r.execution_ms, r.invocations, r.errors) for r in rows] == [
        ("fn_a", day1, 15.0, 3, 1),
        ("fn_gone", day2, 1.0, 1, 1),
    ]
    assert [r.display_name for r in rows] == ["Alpha", ""]
    assert await table.usage("ws_a", function_id="fn_a", since=day2) == []
    assert await table.usage("ws_b", function_id=None, since=day1) == []


def _log(n: int, *, kind: int = 1, function_id: str = "fn_a", at: float = 0.0) -> LogRow:
    return LogRow(f"lg_{function_id}_{kind}_{n}", "ws_a", function_id, kind, "r1", at, b"%d" % n)


async def test_logs_keep_the_newest_per_function_and_kind_and_prune_by_age(store: Store) -> None:
    table = store.observability()
    keep = {1: 3, 2: 1}
    await table.add_logs([_log(n, at=n) for n in range(5)], keep=keep)
    await table.add_logs([_log(n, kind=2, at=n) for n in range(2)], keep=keep)
    await table.add_logs([_log(n, function_id="fn_b", at=n) for n in range(2)], keep=keep)
    await table.add_logs([_log(5, at=5)], keep=keep)

    page = await table.list_logs("fn_a", kinds=[1], after=None, limit=2)
    assert [r.body for r in page.items] == [b"5", b"4"] and page.next_after is not None
    rest = await table.list_logs("fn_a", kinds=[1], after=page.next_after, limit=2)
    assert [r.body for r in rest.items] == [b"3"] and rest.next_after is None
    both = await table.list_logs("fn_a", kinds=[1, 2], after=None, limit=10)
    assert sorted(r.body for r in both.items) == [b"1", b"3", b"4", b"5"]
    assert len((await table.list_logs("fn_b", kinds=[1], after=None, limit=10)).items) == 2

    last = await table.last_log_seq()
    await table.add_logs([_log(6, at=6), _log(3, function_id="fn_b", at=6)], keep=keep)
    newer = await table.logs_after("fn_a", after=last, not_replica="r2", kinds=[1])
    assert [r.body for r in newer] == [b"6"]
    assert await table.logs_after("fn_a", after=last, not_replica="r1", kinds=[1]) == []

    # Older than 4.5: fn_a 4 (kind 1) and 1 (kind 2), fn_b 0 and 1.
    assert await table.prune_logs(before=4.5) == 4
    remaining = await table.list_logs("fn_a", kinds=[1, 2], after=None, limit=10)
    assert sorted(r.body for r in remaining.items) == [b"5", b"6"]
