"""The argument parser: global options accepted before and after any subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

__all__ = ["DEFAULT_DATA_DIR", "DEFAULT_TARGET", "Parser", "UsageError", "build_parser"]

DEFAULT_TARGET = "127.0.0.1:50051"
DEFAULT_DATA_DIR = ".fnbox"


class UsageError(Exception):
    """The command line is wrong (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are exceptions (printed by main as one line)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


Register = Callable[["argparse._SubParsersAction[Parser]", Callable[..., Parser]], None]


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The global options; on subcommands they default to SUPPRESS so that a value given
    before the subcommand is not overwritten by the subcommand's default."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        default=default(None),
        help=f"control service address (env FNBOX_TARGET, default {DEFAULT_TARGET})",
    )
    group.add_argument(
        "--token",
        default=default(None),
        help="API token (env FNBOX_TOKEN, else read from DIR/admin.token)",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        default=default(None),
        help=f"data directory of 'fnbox serve' (default ./{DEFAULT_DATA_DIR})",
    )
    group.add_argument(
        "--output",
        choices=("table", "json"),
        default=default("table"),
        help="table: readable text (default); json: JSON for scripts",
    )


def build_parser(registers: list[Register]) -> Parser:
    """The ``fnbox`` parser with every subcommand that ``registers`` add."""
    parser = Parser(
        prog="fnbox",
        description="Self-hosted, Segment-compatible event functions.",
        epilog=(
            "Exit status: 0 when the command ran (an invocation ran, whatever its outcome); "
            "2 for bad usage or input (also code that does not compile); 1 for other errors "
            "reported by the server; 3 when the server "
            "is unreachable; 130 when interrupted."
        ),
    )
    add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    def add_command(
        subparsers: argparse._SubParsersAction[Parser], name: str, **kwargs: Any
    ) -> Parser:
        sub = subparsers.add_parser(name, **kwargs)
        add_global_options(sub, suppress=True)
        return sub

    for register in registers:
        register(commands, add_command)
    return parser


def nested(
    add_command: Callable[..., Parser],
    parent: argparse._SubParsersAction[Parser],
    name: str,
    help: str,
) -> argparse._SubParsersAction[Parser]:
    """A command group (``fnbox functions ...``) and the subparsers of its verbs."""
    group = add_command(parent, name, help=help, description=help)
    verbs = group.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    verbs.required = True
    return verbs
