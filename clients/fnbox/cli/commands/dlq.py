"""``fnbox dlq list|show|replay|purge``: the dead-letter queue."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from fnbox.cli.context import Context
from fnbox.cli.parser import Parser, UsageError, nested
from fnbox.cli.render import enum_label, message_json, pretty_json, timestamp
from fnbox.client.dead_letters import DeadLettersAPI
from fnbox.functions.v1 import dead_letters_pb2, invocation_pb2

__all__ = ["register"]


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    verbs = nested(add_command, commands, "dlq", "the dead-letter queue (final failures)")

    p = add_command(verbs, "list", help="list dead letters, newest first")
    p.add_argument("--instance", metavar="I", default="", help="only this instance's")
    p.set_defaults(run=list_dead_letters)

    p = add_command(verbs, "show", help="show a dead letter with its payload, error and logs")
    p.add_argument("id", metavar="ID", help="resource name or short id")
    p.set_defaults(run=show)

    p = add_command(verbs, "replay", help="run dead letters again through the pipeline")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--instance", metavar="I", default="", help="every dead letter of I")
    p.add_argument(
        "--version", type=int, default=0, metavar="V", help="function version (default: deployed)"
    )
    p.set_defaults(run=replay)

    p = add_command(verbs, "purge", help="delete dead letters")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--instance", metavar="I", default="", help="every dead letter of I")
    p.add_argument("--all", action="store_true", help="every dead letter of the workspace")
    p.set_defaults(run=purge)


def _api(ctx: Context) -> DeadLettersAPI:
    return DeadLettersAPI(ctx.client.transport)


def _selection(args: argparse.Namespace, *, allow_all: bool) -> None:
    chosen = sum(bool(x) for x in (args.ids, args.instance, allow_all and args.all))
    if chosen != 1:
        what = "IDs, --instance or --all" if allow_all else "IDs or --instance"
        raise UsageError(f"give exactly one of {what}")


def _stage(value: int) -> str:
    return enum_label(dead_letters_pb2.DeadLetterStage.Name(value), "DEAD_LETTER_STAGE_")


def _outcome(value: int) -> str:
    if not value:
        return "PLATFORM"
    return invocation_pb2.Outcome.Name(value).removeprefix("OUTCOME_")


async def list_dead_letters(ctx: Context, args: argparse.Namespace) -> None:
    found = [d async for d in _api(ctx).iterate(instance=args.instance)]
    if ctx.out.json:
        ctx.out.emit_json({"deadLetters": [_summary_json(d) for d in found]})
        return
    ctx.out.table(
        ("ID", "INSTANCE", "STAGE", "OUTCOME", "ATTEMPTS", "CREATED", "ERROR"),
        (
            (
                d.id,
                d.instance.rsplit("/", 1)[-1],
                _stage(d.stage),
                _outcome(d.outcome) + (" (replay queued)" if d.replay_pending else ""),
                str(d.attempts),
                timestamp(d.create_time),
                f"{d.error.name}: {d.error.message}".splitlines()[0][:80] if d.error.name else "",
            )
            for d in found
        ),
        empty=f"No dead letters{' of ' + args.instance if args.instance else ''}.",
    )


def _summary_json(dead_letter: dead_letters_pb2.DeadLetter) -> dict[str, object]:
    data = message_json(dead_letter)
    data.pop("event", None)
    data.pop("request", None)
    data.pop("logs", None)
    return data


async def show(ctx: Context, args: argparse.Namespace) -> None:
    d = await _api(ctx).get(args.id)
    if ctx.out.json:
        ctx.out.emit_json(message_json(d))
        return
    pairs = [
        ("name", d.name),
        ("instance", d.instance),
        ("stage", _stage(d.stage)),
        ("reason", d.reason),
        ("outcome", _outcome(d.outcome)),
        ("message id", d.message_id),
        ("attempts", str(d.attempts)),
        ("version", d.version or "-"),
        ("first attempt", timestamp(d.first_attempt_time)),
        ("created", timestamp(d.create_time)),
    ]
    if d.replay_pending:
        pairs.append(("replay", f"queued (version {d.replay_version or 'deployed'})"))
    if d.error.name or d.error.message:
        pairs.append(("error", f"{d.error.name}: {d.error.message}"))
    if d.error.stack:
        pairs.append(("stack", d.error.stack))
    if d.logs:
        pairs.append(("logs", "\n".join(d.logs)))
    if d.stage == dead_letters_pb2.DEAD_LETTER_STAGE_SOURCE:
        pairs.append(("request", f"{d.request.method} {d.request.url}"))
        pairs.append(("body", d.request.body.decode("utf-8", "replace")))
    else:
        pairs.append(("event", pretty_json(d.event or b"{}")))
    ctx.out.fields(pairs)


async def replay(ctx: Context, args: argparse.Namespace) -> None:
    _selection(args, allow_all=False)
    queued = await _api(ctx).replay(names=args.ids, instance=args.instance, version=args.version)
    if ctx.out.json:
        ctx.out.emit_json({"queued": queued})
        return
    into = f"version {args.version}" if args.version else "the deployed version"
    ctx.out.line(f"Queued {queued} dead letter(s) for replay into {into}.")


async def purge(ctx: Context, args: argparse.Namespace) -> None:
    _selection(args, allow_all=True)
    purged = await _api(ctx).purge(names=args.ids, instance=args.instance, all=args.all)
    if ctx.out.json:
        ctx.out.emit_json({"purged": purged})
        return
    ctx.out.line(f"Purged {purged} dead letter(s).")
