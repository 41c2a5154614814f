"""``fnbox serve|control|gateway|delivery``: run the services, imported only when asked for.

The CLI never imports the server or the pipeline at start: they are separate packages that a
client-only installation may not have.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from fnbox.cli.context import CliSettings
from fnbox.cli.parser import Parser

__all__ = ["ServiceUnavailable", "register"]


class ServiceUnavailable(Exception):
    """The package that implements a service is not installed (exit status 2)."""


def register(
    commands: argparse._SubParsersAction[Parser], add_command: Callable[..., Parser]
) -> None:
    p = add_command(
        commands,
        "serve",
        help="run everything in one process tree (SQLite under --data-dir)",
        description=(
            "All-in-one: control service, webhook gateway and delivery workers. Writes "
            "DIR/admin.token on first start and prints where it listens."
        ),
    )
    p.add_argument("--grpc-listen", metavar="HOST:PORT", help="control service address")
    p.add_argument("--http-listen", metavar="HOST:PORT", help="webhook gateway address")
    p.set_defaults(service=serve)

    p = add_command(commands, "control", help="run the control service alone")
    p.add_argument("--grpc-listen", metavar="HOST:PORT")
    p.set_defaults(service=control)

    p = add_command(commands, "gateway", help="run the webhook gateway alone")
    p.add_argument("--http-listen", metavar="HOST:PORT")
    p.set_defaults(service=gateway)

    p = add_command(commands, "delivery", help="run the delivery workers alone")
    p.set_defaults(service=delivery)


def serve(settings: CliSettings, args: argparse.Namespace) -> int:
    entry = _entry("fnbox.server.main", "serve", "serve")
    return _call(
        entry,
        data_dir=str(settings.data_dir),
        grpc_listen=args.grpc_listen,
        http_listen=args.http_listen,
    )


def control(settings: CliSettings, args: argparse.Namespace) -> int:
    entry = _entry("fnbox.server.main", "control", "control")
    return _call(entry, data_dir=str(settings.data_dir), grpc_listen=args.grpc_listen)


def gateway(settings: CliSettings, args: argparse.Namespace) -> int:
    entry = _entry("fnbox.gateway.main", "run", "gateway")
    return _call(
        entry,
        target=settings.target,
        token=settings.token,
        data_dir=str(settings.data_dir),
        http_listen=args.http_listen,
    )


def delivery(settings: CliSettings, args: argparse.Namespace) -> int:
    entry = _entry("fnbox.delivery.main", "run", "delivery")
    return _call(
        entry, target=settings.target, token=settings.token, data_dir=str(settings.data_dir)
    )


def _entry(module_name: str, function: str, command: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the service's own module missing means "not installed"; a missing dependency
        # inside it is a real error and propagates.
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        raise ServiceUnavailable(
            f"'fnbox {command}' is not available in this installation ({module_name} is missing)"
        ) from None
    entry: Callable[..., Any] | None = getattr(module, function, None)
    if entry is None or not callable(entry):
        raise ServiceUnavailable(
            f"'fnbox {command}' is not available: {module_name}.{function} is missing"
        )
    return entry


def _call(entry: Callable[..., Any], **kwargs: Any) -> int:
    result = entry(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return int(result or 0)


async def _await(awaitable: Any) -> Any:
    return await awaitable
