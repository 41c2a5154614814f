"""``fnbox functions create|list|get|update|delete|deploy|versions|restore``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

from fnbox.cli.context import Context
from fnbox.cli.files import load_settings_schema, read_text
from fnbox.cli.parser import Parser, UsageError, nested
from fnbox.cli.render import enum_label, function_type_label, message_json, timestamp
from fnbox.functions.v1 import resources_pb2

__all__ = ["FUNCTION_TYPES", "register"]

FUNCTION_TYPES: dict[str, resources_pb2.FunctionType] = {
    "source": resources_pb2.FUNCTION_TYPE_SOURCE,
    "destination": resources_pb2.FUNCTION_TYPE_DESTINATION,
    "insert-destination": resources_pb2.FUNCTION_TYPE_INSERT_DESTINATION,
    "insert-source": resources_pb2.FUNCTION_TYPE_INSERT_SOURCE,
}


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    verbs = nested(add_command, commands, "functions", "manage functions and their versions")

    p = add_command(verbs, "create", help="create a function (saved as version 1, not deployed)")
    p.add_argument("--type", required=True, choices=list(FUNCTION_TYPES))
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--code", required=True, metavar="FILE", help="JavaScript file ('-': stdin)")
    p.add_argument("--settings-schema", metavar="FILE", help="JSON array of setting definitions")
    p.set_defaults(run=create)

    p = add_command(verbs, "list", help="list the workspace's functions")
    p.set_defaults(run=list_functions)

    p = add_command(verbs, "get", help="show a function and its code")
    p.add_argument("function", metavar="F", help="resource name or short id")
    p.set_defaults(run=get)

    p = add_command(verbs, "update", help="change the code, name or schema (a new version)")
    p.add_argument("function", metavar="F")
    p.add_argument("--code", metavar="FILE")
    p.add_argument("--name", help="new display name")
    p.add_argument("--settings-schema", metavar="FILE")
    p.set_defaults(run=update)

    p = add_command(verbs, "delete", help="delete a function")
    p.add_argument("function", metavar="F")
    p.add_argument("--force", action="store_true", help="also delete its instances")
    p.set_defaults(run=delete)

    p = add_command(verbs, "deploy", help="make a version (default: the latest) live")
    p.add_argument("function", metavar="F")
    p.add_argument("--version", type=_version, default=0, metavar="V")
    p.set_defaults(run=deploy)

    p = add_command(verbs, "versions", help="list a function's versions, newest first")
    p.add_argument("function", metavar="F")
    p.set_defaults(run=versions)

    p = add_command(verbs, "restore", help="copy an old version to a new latest version")
    p.add_argument("function", metavar="F")
    p.add_argument("--version", type=_version, required=True, metavar="V")
    p.set_defaults(run=restore)


async def create(ctx: Context, args: argparse.Namespace) -> None:
    code = read_text(args.code)
    schema = load_settings_schema(args.settings_schema) if args.settings_schema else []
    function = await ctx.client.functions.create(
        args.name, FUNCTION_TYPES[args.type], code, settings_schema=schema
    )
    if ctx.out.json:
        ctx.out.emit_json(message_json(function))
        return
    ctx.out.line(f"Created function {function.display_name!r}: {function.name} (id {function.id})")
    ctx.out.line(f"Deploy it with: fnbox functions deploy {function.id}")


async def list_functions(ctx: Context, args: argparse.Namespace) -> None:
    functions = [function async for function in ctx.client.functions.iterate()]
    if ctx.out.json:
        ctx.out.emit_json({"functions": [message_json(f) for f in functions]})
        return
    ctx.out.table(
        ("ID", "NAME", "TYPE", "LATEST", "DEPLOYED", "UPDATED"),
        (
            (
                f.id,
                f.display_name,
                function_type_label(f.type),
                str(f.latest_version),
                str(f.deployed_version) if f.deployed_version else "-",
                timestamp(f.update_time),
            )
            for f in functions
        ),
        empty="No functions yet: create one with 'fnbox functions create'.",
    )


async def get(ctx: Context, args: argparse.Namespace) -> None:
    function = await ctx.client.functions.get(args.function)
    if ctx.out.json:
        ctx.out.emit_json(message_json(function))
        return
    pairs = [
        ("name", function.name),
        ("id", function.id),
        ("display name", function.display_name),
        ("type", function_type_label(function.type)),
        ("latest version", str(function.latest_version)),
        ("deployed version", str(function.deployed_version or "-")),
        ("created", timestamp(function.create_time)),
        ("updated", timestamp(function.update_time)),
        ("deployed", timestamp(function.deploy_time)),
    ]
    if function.settings_schema:
        pairs.append(("settings", _schema_text(function.settings_schema)))
    if function.batch.max_count or function.batch.max_wait_ms:
        pairs.append(
            ("batch", f"max {function.batch.max_count} events, {function.batch.max_wait_ms} ms")
        )
    if function.limits.timeout_ms or function.limits.memory_mib:
        pairs.append(
            ("limits", f"{function.limits.timeout_ms} ms, {function.limits.memory_mib} MiB")
        )
    pairs.append(("code", function.code.rstrip("\n")))
    ctx.out.fields(pairs)


async def update(ctx: Context, args: argparse.Namespace) -> None:
    if args.code is None and args.name is None and args.settings_schema is None:
        raise UsageError("nothing to update: give --code, --name or --settings-schema")
    function = await ctx.client.functions.update(
        args.function,
        display_name=args.name,
        code=read_text(args.code) if args.code is not None else None,
        settings_schema=(
            load_settings_schema(args.settings_schema) if args.settings_schema else None
        ),
    )
    if ctx.out.json:
        ctx.out.emit_json(message_json(function))
        return
    ctx.out.line(f"Updated function {function.id}: latest version {function.latest_version}")
    if function.latest_version != function.deployed_version:
        ctx.out.line(f"Deploy it with: fnbox functions deploy {function.id}")


async def delete(ctx: Context, args: argparse.Namespace) -> None:
    await ctx.client.functions.delete(args.function, force=args.force)
    if ctx.out.json:
        ctx.out.emit_json({"name": args.function, "status": "SUCCESS"})
    else:
        ctx.out.line(f"Deleted function {args.function}")


async def deploy(ctx: Context, args: argparse.Namespace) -> None:
    function = await ctx.client.functions.deploy(args.function, version=args.version)
    if ctx.out.json:
        ctx.out.emit_json(message_json(function))
    else:
        ctx.out.line(f"Deployed version {function.deployed_version} of function {function.id}")


async def versions(ctx: Context, args: argparse.Namespace) -> None:
    found = [version async for version in ctx.client.functions.iterate_versions(args.function)]
    if ctx.out.json:
        ctx.out.emit_json({"versions": [message_json(v) for v in found]})
        return
    ctx.out.table(
        ("VERSION", "STATE", "AUTHOR", "CREATED", "DEPLOYED"),
        (
            (
                str(v.version),
                ",".join(s for s, on in (("deployed", v.deployed), ("latest", v.latest)) if on)
                or "-",
                v.author.rsplit("/", 1)[-1] or "-",  # the token's id
                timestamp(v.create_time),
                timestamp(v.deploy_time),
            )
            for v in found
        ),
    )


async def restore(ctx: Context, args: argparse.Namespace) -> None:
    version = await ctx.client.functions.restore(args.function, args.version)
    if ctx.out.json:
        ctx.out.emit_json(message_json(version))
        return
    ctx.out.line(f"Restored version {args.version} as version {version.version}")
    ctx.out.line(f"Deploy it with: fnbox functions deploy {args.function}")


def _schema_text(schema: Iterable[resources_pb2.SettingDefinition]) -> str:
    rows: list[tuple[str, ...]] = []
    for setting in schema:
        flags = ",".join(
            flag
            for flag, on in (("required", setting.required), ("sensitive", setting.sensitive))
            if on
        )
        kind = enum_label(resources_pb2.SettingType.Name(setting.type), "SETTING_TYPE_")
        rows.append((setting.name, kind, flags or "-", setting.label))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3]]).rstrip()
        for row in rows
    )


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid version {text!r}: expected a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid version {value}: versions start at 1")
    return value
