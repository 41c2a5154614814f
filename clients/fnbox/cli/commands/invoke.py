"""``fnbox invoke TARGET ...`` and ``fnbox run --type T --code FILE ...``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from fnbox.cli.commands.functions import FUNCTION_TYPES
from fnbox.cli.context import Context
from fnbox.cli.files import STDIN, load_event_input, load_request, load_settings, read_text
from fnbox.cli.parser import Parser, UsageError
from fnbox.cli.results import print_result
from fnbox.functions.v1 import invocation_pb2

__all__ = ["register"]


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    p = add_command(
        commands,
        "invoke",
        help="run an instance or a function on an event or a webhook request",
        description=(
            "Run an instance (its deployed version with its settings), a function (its "
            "deployed, else latest version) or a version on one input. Exit status 0 "
            "whatever the outcome."
        ),
    )
    # Not dest="target": that is the global --target (the server's address).
    p.add_argument("invoke_target", metavar="TARGET", help="instance or function: name or short id")
    _add_inputs(p)
    p.set_defaults(run=invoke)

    p = add_command(
        commands,
        "run",
        help="run unsaved code on an event or a webhook request (nothing is stored)",
    )
    p.add_argument("--type", required=True, choices=list(FUNCTION_TYPES))
    p.add_argument("--code", required=True, metavar="FILE", help="JavaScript file ('-': stdin)")
    _add_inputs(p)
    p.set_defaults(run=run)


def _add_inputs(parser: Parser) -> None:
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--event", metavar="FILE", help="a JSON event, or a JSON array of events (a batch)"
    )
    given.add_argument(
        "--request",
        metavar="FILE",
        help='a webhook: {"method", "url", "headers", "body"} (source functions)',
    )
    parser.add_argument("--settings", metavar="FILE", help="JSON object of setting values")


@dataclass(frozen=True, slots=True)
class _Input:
    event: bytes | None = None
    events: bytes | None = None
    request: invocation_pb2.WebhookRequest | None = None
    settings: bytes | None = None


def _read_inputs(args: argparse.Namespace) -> _Input:
    files = [path for path in (args.event, args.request, args.settings) if path is not None]
    if getattr(args, "code", None) is not None:
        files.append(args.code)
    if files.count(STDIN) > 1:
        raise UsageError("only one file can be '-' (standard input)")
    settings = load_settings(args.settings) if args.settings is not None else None
    if args.request is not None:
        return _Input(request=load_request(args.request), settings=settings)
    kind, payload = load_event_input(args.event)
    if kind == "events":
        return _Input(events=payload, settings=settings)
    return _Input(event=payload, settings=settings)


async def invoke(ctx: Context, args: argparse.Namespace) -> None:
    given = _read_inputs(args)
    result = await ctx.client.invoke(
        args.invoke_target,
        event=given.event,
        events=given.events,
        request=given.request,
        settings=given.settings,
    )
    print_result(ctx.out, result)


async def run(ctx: Context, args: argparse.Namespace) -> None:
    code = read_text(args.code)
    given = _read_inputs(args)
    result = await ctx.client.run(
        FUNCTION_TYPES[args.type],
        code,
        event=given.event,
        events=given.events,
        request=given.request,
        settings=given.settings,
    )
    print_result(ctx.out, result)
