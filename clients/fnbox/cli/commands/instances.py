"""``fnbox instances create|list|get|update|delete``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from fnbox.cli.context import Context
from fnbox.cli.files import load_settings, read_text
from fnbox.cli.parser import Parser, UsageError, nested
from fnbox.cli.render import enum_label, function_type_label, message_json, pretty_json, timestamp
from fnbox.functions.v1 import resources_pb2
from fnbox.gateway.auth import DEFAULT_HMAC_HEADER, DEFAULT_SECRET_HEADER

__all__ = ["register"]


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    verbs = nested(add_command, commands, "instances", "manage instances (configured functions)")

    p = add_command(verbs, "create", help="connect a function with its setting values")
    p.add_argument("--function", required=True, metavar="F", help="resource name or short id")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--settings", metavar="FILE", help="JSON object of setting values")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="INSTANCE",
        help="source instance whose events this one receives (repeatable)",
    )
    _add_links(p)
    _add_enabled(p, default=True)
    p.set_defaults(run=create)

    p = add_command(verbs, "list", help="list the workspace's instances")
    p.add_argument("--function", metavar="F", default="", help="only this function's")
    p.set_defaults(run=list_instances)

    p = add_command(verbs, "get", help="show an instance (sensitive settings hidden)")
    p.add_argument("instance", metavar="I", help="resource name or short id")
    p.set_defaults(run=get)

    p = add_command(verbs, "update", help="change settings, name, sources or enable/disable")
    p.add_argument("instance", metavar="I")
    p.add_argument("--settings", metavar="FILE", help="JSON object; null removes a key")
    p.add_argument("--name", help="new display name")
    p.add_argument(
        "--source", action="append", metavar="INSTANCE", help="replace the sources (repeatable)"
    )
    _add_links(p)
    _add_enabled(p, default=None)
    p.set_defaults(run=update)

    p = add_command(verbs, "delete", help="delete an instance")
    p.add_argument("instance", metavar="I")
    p.set_defaults(run=delete)


def _add_links(parser: Parser) -> None:
    parser.add_argument(
        "--insert",
        metavar="INSTANCE",
        help="insert instance that runs in front of this one ('' removes it)",
    )
    parser.add_argument(
        "--webhook-auth",
        choices=sorted(_AUTH_MODES),
        help="how a source's webhooks are authenticated",
    )
    parser.add_argument(
        "--webhook-header", metavar="HEADER", help="header carrying the secret or signature"
    )
    parser.add_argument(
        "--webhook-secret-file",
        metavar="FILE",
        help="file holding the webhook secret (kept encrypted, never shown)",
    )


_AUTH_MODES = {
    "none": resources_pb2.WebhookAuth.MODE_UNSPECIFIED,
    "shared-secret": resources_pb2.WebhookAuth.MODE_SHARED_SECRET,
    "hmac-sha256": resources_pb2.WebhookAuth.MODE_HMAC_SHA256,
}


def _webhook_auth(args: argparse.Namespace) -> resources_pb2.WebhookAuth | None:
    if args.webhook_auth is None:
        if args.webhook_header or args.webhook_secret_file:
            raise UsageError("--webhook-header/--webhook-secret-file need --webhook-auth")
        return None
    secret = read_text(args.webhook_secret_file).strip() if args.webhook_secret_file else ""
    mode = _AUTH_MODES[args.webhook_auth]
    if mode != resources_pb2.WebhookAuth.MODE_UNSPECIFIED and not secret:
        raise UsageError(f"--webhook-auth {args.webhook_auth} needs --webhook-secret-file")
    return resources_pb2.WebhookAuth(mode=mode, header=args.webhook_header or "", secret=secret)


def _add_enabled(parser: Parser, *, default: bool | None) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--enabled", dest="enabled", action="store_true", default=default)
    group.add_argument("--disabled", dest="enabled", action="store_false")


async def create(ctx: Context, args: argparse.Namespace) -> None:
    settings = load_settings(args.settings) if args.settings else b"{}"
    instance = await ctx.client.instances.create(
        args.function,
        args.name,
        settings=settings,
        enabled=args.enabled,
        sources=args.source,
        insert_instance=args.insert or "",
        webhook_auth=_webhook_auth(args),
    )
    if ctx.out.json:
        ctx.out.emit_json(message_json(instance))
        return
    ctx.out.line(f"Created instance {instance.display_name!r}: {instance.name} (id {instance.id})")
    if instance.webhook_url:
        ctx.out.line(f"Webhook URL: {instance.webhook_url}")


async def list_instances(ctx: Context, args: argparse.Namespace) -> None:
    found = [i async for i in ctx.client.instances.iterate(function=args.function)]
    if ctx.out.json:
        ctx.out.emit_json({"instances": [message_json(i) for i in found]})
        return
    ctx.out.table(
        ("ID", "NAME", "FUNCTION", "TYPE", "ENABLED", "WEBHOOK"),
        (
            (
                i.id,
                i.display_name,
                i.function.rsplit("/", 1)[-1],
                function_type_label(i.function_type),
                "yes" if i.enabled else "no",
                i.webhook_url or "-",
            )
            for i in found
        ),
        empty=f"No instances{' of ' + args.function if args.function else ''}: "
        "create one with 'fnbox instances create'.",
    )


async def get(ctx: Context, args: argparse.Namespace) -> None:
    instance = await ctx.client.instances.get(args.instance)
    if ctx.out.json:
        ctx.out.emit_json(message_json(instance))
        return
    pairs = [
        ("name", instance.name),
        ("id", instance.id),
        ("display name", instance.display_name),
        ("function", instance.function),
        ("type", function_type_label(instance.function_type)),
        ("enabled", "yes" if instance.enabled else "no"),
    ]
    if instance.sources:
        pairs.append(("sources", "\n".join(instance.sources)))
    if instance.insert_instance:
        pairs.append(("insert instance", instance.insert_instance))
    if instance.webhook_url:
        pairs.append(("webhook url", instance.webhook_url))
    auth = instance.webhook_auth
    if auth.mode:
        mode = enum_label(resources_pb2.WebhookAuth.Mode.Name(auth.mode), "MODE_")
        header = auth.header or (
            DEFAULT_HMAC_HEADER
            if auth.mode == resources_pb2.WebhookAuth.MODE_HMAC_SHA256
            else DEFAULT_SECRET_HEADER
        )
        pairs.append(("webhook auth", f"{mode} (header {header})"))
    pairs.append(("settings", pretty_json(instance.settings or b"{}")))
    if instance.sensitive_settings:
        hidden = ", ".join(instance.sensitive_settings)
        pairs.append(("sensitive settings", f"{hidden} (set, not shown)"))
    pairs += [
        ("created", timestamp(instance.create_time)),
        ("updated", timestamp(instance.update_time)),
    ]
    ctx.out.fields(pairs)


async def update(ctx: Context, args: argparse.Namespace) -> None:
    webhook_auth = _webhook_auth(args)
    unchanged = (args.settings, args.name, args.enabled, args.insert, webhook_auth)
    if all(value is None for value in unchanged) and not args.source:
        raise UsageError(
            "nothing to update: give --settings, --name, --source, --insert, --webhook-auth,"
            " --enabled or --disabled"
        )
    instance = await ctx.client.instances.update(
        args.instance,
        display_name=args.name,
        settings=load_settings(args.settings) if args.settings else None,
        enabled=args.enabled,
        sources=args.source,
        insert_instance=args.insert,
        webhook_auth=webhook_auth,
    )
    if ctx.out.json:
        ctx.out.emit_json(message_json(instance))
    else:
        state = "enabled" if instance.enabled else "disabled"
        ctx.out.line(f"Updated instance {instance.id} ({state})")


async def delete(ctx: Context, args: argparse.Namespace) -> None:
    await ctx.client.instances.delete(args.instance)
    if ctx.out.json:
        ctx.out.emit_json({"name": args.instance, "status": "SUCCESS"})
    else:
        ctx.out.line(f"Deleted instance {args.instance}")
