"""``fnbox usage [F] [--since DATE]`` and ``fnbox logs F [--follow]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from datetime import date

from fnbox.cli.context import Context
from fnbox.cli.parser import Parser, UsageError
from fnbox.cli.render import message_json
from fnbox.client.errors import error_from_status
from fnbox.client.observability import ObservabilityAPI
from fnbox.functions.v1 import invocation_pb2, observability_pb2

__all__ = ["register"]

_INPUT_PREVIEW = 300


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    p = add_command(
        commands,
        "usage",
        help="execution time per function per day",
        description="Execution milliseconds, invocations and errors per function per UTC day "
        "(of the workspace, or of function F).",
    )
    p.add_argument("function", nargs="?", default="", metavar="F", help="only this function")
    p.add_argument(
        "--since",
        type=_date,
        default=None,
        metavar="DATE",
        help="first day, YYYY-MM-DD (default: 30 days ago)",
    )
    p.set_defaults(run=usage)

    p = add_command(
        commands,
        "logs",
        help="a function's recent errors; --follow for a live tail",
        description="The most recent failed (and sampled) invocations of function F, oldest "
        "first; with --follow, then every invocation as it finishes until Ctrl-C.",
    )
    p.add_argument("function", metavar="F")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new invocations")
    p.add_argument("--errors", action="store_true", help="only failed invocations")
    p.add_argument(
        "--limit", type=int, default=20, metavar="N", help="stored entries shown first (20)"
    )
    p.set_defaults(run=logs)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _day(value: object) -> str:
    year, month, day = (getattr(value, name) for name in ("year", "month", "day"))
    return f"{year:04d}-{month:02d}-{day:02d}"


async def usage(ctx: Context, args: argparse.Namespace) -> None:
    answer = await ObservabilityAPI(ctx.client.transport).usage(
        function=args.function, since=args.since
    )
    if ctx.out.json:
        ctx.out.emit_json(
            {
                "usage": [
                    {
                        "function": r.function,
                        "displayName": r.display_name,
                        "day": _day(r.day),
                        "executionMs": round(r.execution_ms, 3),
                        "invocations": r.invocations,
                        "errors": r.errors,
                    }
                    for r in answer.records
                ],
                "totalExecutionMs": round(answer.total_execution_ms, 3),
                "totalInvocations": answer.total_invocations,
                "totalErrors": answer.total_errors,
            }
        )
        return
    ctx.out.table(
        ("DAY", "FUNCTION", "NAME", "EXECUTION MS", "INVOCATIONS", "ERRORS"),
        (
            (
                _day(r.day),
                r.function.rsplit("/", 1)[-1],
                r.display_name or "(deleted)",
                f"{r.execution_ms:.0f}",
                str(r.invocations),
                str(r.errors),
            )
            for r in answer.records
        ),
        empty="No usage recorded" + (f" since {args.since}" if args.since else "") + ".",
    )
    if answer.records:
        ctx.out.line(
            f"total: {answer.total_execution_ms:.0f} ms in {answer.total_invocations} "
            f"invocation(s), {answer.total_errors} error(s)"
        )


async def logs(ctx: Context, args: argparse.Namespace) -> None:
    if args.limit < 0:
        raise UsageError("--limit must not be negative")
    api = ObservabilityAPI(ctx.client.transport)
    if not args.follow:
        await _print_stored(ctx, api, args, seen=set())
        return
    opened = asyncio.Event()
    live: asyncio.Queue[observability_pb2.LogEntry | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for entry in api.tail(args.function, errors_only=args.errors, opened=opened):
                live.put_nowait(entry)
        finally:
            live.put_nowait(None)
            opened.set()

    # The tail opens first, so nothing that finishes while the stored entries print is lost.
    task = asyncio.create_task(pump())
    try:
        await opened.wait()
        if task.done():
            await task  # the tail could not open: raise its error
        seen: set[str] = set()
        await _print_stored(ctx, api, args, seen=seen)
        while (entry := await live.get()) is not None:
            if entry.name not in seen:
                _print_entry(ctx, entry)
        await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _print_stored(
    ctx: Context, api: ObservabilityAPI, args: argparse.Namespace, *, seen: set[str]
) -> None:
    stored = [
        entry
        async for entry in api.iterate_logs(
            args.function, errors_only=args.errors, limit=args.limit
        )
    ]
    for entry in reversed(stored):  # oldest first, like a log
        seen.add(entry.name)
        _print_entry(ctx, entry)
    if not stored and not ctx.out.json:
        what = "failed invocations" if args.errors else "failed or sampled invocations"
        note = f"No stored {what} of {args.function}"
        if args.follow:  # the tail's lines go to stdout: this one to stderr
            sys.stderr.write(f"{note}; following new ones (Ctrl-C stops).\n")
            sys.stderr.flush()
        else:
            ctx.out.line(
                f"{note}. The most recent failures are kept; successes only when sampled "
                "(FNBOX_TELEMETRY__LOGS_SAMPLE_RATE). 'fnbox logs F --follow' shows every "
                "invocation as it finishes."
            )


def _print_entry(ctx: Context, entry: observability_pb2.LogEntry) -> None:
    out = ctx.out
    if out.json:
        out.line(json.dumps(message_json(entry), ensure_ascii=False, separators=(",", ":")))
        out.stream.flush()
        return
    when = entry.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    fault = error_from_status(entry.fault) if entry.HasField("fault") else None
    if fault is not None:  # no result: its worker died under it
        outcome = fault.reason or fault.code.name
    else:
        outcome = invocation_pb2.Outcome.Name(entry.outcome).removeprefix("OUTCOME_")
    where = " ".join(
        part
        for part in (
            entry.version.split("/functions/", 1)[-1],
            entry.instance.rsplit("/", 1)[-1],
        )
        if part
    )
    out.line(f"{when}  {outcome}  {where}  {entry.duration_ms:.1f} ms")
    if fault is not None:
        out.line(f"  {fault.message}")
    if entry.error.name or entry.error.message:
        out.line(f"  {entry.error.name}: {entry.error.message}")
    for line in entry.logs:
        out.line(f"  log: {line}")
    if entry.logs_truncated:
        out.line("  log: … (truncated)")
    for request in entry.requests:
        status = str(request.status) if request.status else request.error or "failed"
        out.line(
            f"  fetch: {request.method} {request.url} → {status} ({request.duration_ms:.0f} ms)"
        )
    if entry.input:
        text = entry.input.decode("utf-8", "replace").replace("\n", " ")
        cut = len(text) > _INPUT_PREVIEW or entry.input_truncated
        out.line(f"  input: {text[:_INPUT_PREVIEW]}{' …' if cut else ''}")
    if entry.trace_id:
        out.line(f"  trace: {entry.trace_id}")
    out.stream.flush()
