"""``fnbox workspaces create NAME`` and ``fnbox tokens create|list|delete``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from fnbox.cli.context import Context
from fnbox.cli.parser import Parser, nested
from fnbox.cli.render import enum_label, message_json, timestamp
from fnbox.functions.v1 import resources_pb2

__all__ = ["register"]

ROLES: dict[str, resources_pb2.Role] = {
    "admin": resources_pb2.ROLE_ADMIN,
    "developer": resources_pb2.ROLE_DEVELOPER,
    "read-only": resources_pb2.ROLE_READ_ONLY,
}


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    verbs = nested(add_command, commands, "workspaces", "manage workspaces (platform admins)")
    p = add_command(verbs, "create", help="create a workspace and print its admin token")
    p.add_argument("name", metavar="NAME", help="display name")
    p.set_defaults(run=create_workspace)

    verbs = nested(add_command, commands, "tokens", "manage the workspace's API tokens")
    p = add_command(verbs, "create", help="issue a token (its secret is shown only once)")
    p.add_argument("--role", required=True, choices=list(ROLES))
    p.add_argument("--description", default="")
    p.set_defaults(run=create_token)

    p = add_command(verbs, "list", help="list the workspace's tokens (without secrets)")
    p.set_defaults(run=list_tokens)

    p = add_command(verbs, "delete", help="revoke a token")
    # Not dest="token": that is the global --token (the caller's credentials).
    p.add_argument("token_name", metavar="T", help="resource name or short id")
    p.set_defaults(run=delete_token)


async def create_workspace(ctx: Context, args: argparse.Namespace) -> None:
    response = await ctx.client.workspaces.create(args.name)
    if ctx.out.json:
        ctx.out.emit_json(message_json(response))
        return
    workspace, token = response.workspace, response.admin_token
    ctx.out.line(f"Created workspace {workspace.display_name!r}: {workspace.name}")
    ctx.out.line(f"Admin token (shown only once): {token.secret}")


async def create_token(ctx: Context, args: argparse.Namespace) -> None:
    token = await ctx.client.workspaces.create_token(ROLES[args.role], description=args.description)
    if ctx.out.json:
        ctx.out.emit_json(message_json(token))
        return
    ctx.out.line(f"Created {args.role} token {token.id}")
    ctx.out.line(f"Secret (shown only once): {token.secret}")


async def list_tokens(ctx: Context, args: argparse.Namespace) -> None:
    tokens = await ctx.client.workspaces.list_tokens()
    if ctx.out.json:
        ctx.out.emit_json({"tokens": [message_json(t) for t in tokens]})
        return
    ctx.out.table(
        ("ID", "ROLE", "CREATED", "DESCRIPTION"),
        (
            (
                t.id,
                enum_label(resources_pb2.Role.Name(t.role), "ROLE_"),
                timestamp(t.create_time),
                t.description,
            )
            for t in tokens
        ),
    )


async def delete_token(ctx: Context, args: argparse.Namespace) -> None:
    await ctx.client.workspaces.delete_token(args.token_name)
    if ctx.out.json:
        ctx.out.emit_json({"name": args.token_name, "status": "SUCCESS"})
    else:
        ctx.out.line(f"Deleted token {args.token_name}")
