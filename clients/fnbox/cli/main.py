"""The ``fnbox`` command: parse, resolve the global options, run, and turn errors into one line.

Exit status: 0 when the command ran (an invocation ran, whatever its outcome), 2 for bad usage
or input, 1 for errors reported by the server, 3 when the server is unreachable, 130 when
interrupted. Errors are one line on stderr, ``fnbox: error: ...``, never a traceback (unless
``FNBOX_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from fnbox.cli.commands import (
    dlq,
    functions,
    instances,
    invoke,
    observability,
    services,
    workspaces,
)
from fnbox.cli.context import TOKEN_FILE, CliSettings, Context
from fnbox.cli.files import InputError
from fnbox.cli.parser import DEFAULT_DATA_DIR, DEFAULT_TARGET, UsageError, build_parser
from fnbox.cli.render import Output
from fnbox.client import (
    DeadlineExceeded,
    FnboxClient,
    InvalidArgument,
    PermissionDenied,
    RPCError,
    Unauthenticated,
    Unavailable,
)

__all__ = ["main"]

EXIT_OK = 0
EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fnbox`` with ``argv`` (default: the process arguments); returns the exit status."""
    env = os.environ  # the one place the CLI reads its environment
    try:
        return _main(list(argv) if argv is not None else None, env)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `fnbox functions list | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_SERVER_ERROR


def _main(argv: list[str] | None, env: Mapping[str, str]) -> int:
    parser = build_parser(
        [
            functions.register,
            instances.register,
            invoke.register,
            workspaces.register,
            dlq.register,
            observability.register,
            services.register,
        ]
    )
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    settings = CliSettings(
        target=args.target or env.get("FNBOX_TARGET") or DEFAULT_TARGET,
        token=args.token or env.get("FNBOX_TOKEN") or None,
        data_dir=Path(args.data_dir or DEFAULT_DATA_DIR),
        output=args.output,
    )
    try:
        if hasattr(args, "service"):
            status: int = args.service(settings, args)
            return status
        token = settings.require_token()
        return asyncio.run(_run(settings, token, args))
    except (UsageError, InputError, services.ServiceUnavailable) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except RPCError as exc:
        return _fail(*_describe(exc, settings, args))
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except Exception as exc:
        if env.get("FNBOX_DEBUG") == "1":
            traceback.print_exc()
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return _fail(f"unexpected {detail} (set FNBOX_DEBUG=1 for details)", EXIT_SERVER_ERROR)


async def _run(settings: CliSettings, token: str, args: argparse.Namespace) -> int:
    async with FnboxClient(settings.target, token) as client:
        context = Context(settings, client, Output(settings.output, sys.stdout))
        await args.run(context, args)
    return EXIT_OK


# UNAVAILABLE statuses about the function's workers, not the server.
_WORKER_FAULTS = frozenset({"WORKER_CRASHED", "WORKER_START_FAILED", "CRASH_LOOP"})


def _describe(error: RPCError, settings: CliSettings, args: argparse.Namespace) -> tuple[str, int]:
    """One line about ``error`` that says what to do, and the exit status."""
    target = settings.target
    message = " ".join(error.message.split()) or error.code.name.lower()
    if isinstance(error, Unavailable):
        if error.reason in _WORKER_FAULTS:
            # The server is fine: the function's worker died under the call (or keeps dying).
            memory = error.metadata.get("cause") in ("heap_limit", "memory_limit")
            if error.reason == "CRASH_LOOP" or memory:
                return message, EXIT_SERVER_ERROR
            return f"{message}; try again", EXIT_SERVER_ERROR
        if error.domain:  # the server answered: a transient fault on its side
            return f"the server at {target} is unavailable: {message}; try again", (
                EXIT_UNAVAILABLE
            )
        return (
            f"cannot reach the fnbox server at {target}: start one with 'fnbox serve' "
            f"(or 'make run'), or point --target / FNBOX_TARGET at a running one",
            EXIT_UNAVAILABLE,
        )
    if isinstance(error, DeadlineExceeded):
        return f"the server at {target} did not answer in time: {message}", EXIT_UNAVAILABLE
    if isinstance(error, Unauthenticated):
        source = _token_source(settings, args)
        return f"authentication failed ({message}): check {source}", EXIT_SERVER_ERROR
    if isinstance(error, PermissionDenied):
        return f"permission denied: {message}", EXIT_SERVER_ERROR
    if isinstance(error, InvalidArgument):
        code_file = getattr(args, "code", None)
        if error.line is not None and code_file:
            where = "<stdin>" if code_file == "-" else code_file
            if f"line {error.line}" not in message:
                message = f"{message} (line {error.line}, column {error.column})"
            return f"{where}: {message}", EXIT_USAGE
        if error.reason == "WRONG_INPUT_KIND":  # fnbox invoke / run: which option fits
            where = code_file or getattr(args, "invoke_target", "")
            wants_request = error.metadata.get("function_type") == "SOURCE"
            option = "--request FILE (a webhook request)" if wants_request else "--event FILE"
            return f"{where}: {message}; give it {option}", EXIT_USAGE
        return message, EXIT_USAGE
    function = error.metadata.get("function", "")
    if error.reason == "FUNCTION_HAS_INSTANCES" and function:
        return (
            f"function {function} has instances (fnbox instances list --function {function}): "
            "delete them first, or add --force to delete them with it",
            EXIT_SERVER_ERROR,
        )
    if error.reason == "FUNCTION_NOT_DEPLOYED" and function:
        return (
            f"{message}: deploy one with 'fnbox functions deploy {function}'",
            EXIT_SERVER_ERROR,
        )
    return message, EXIT_SERVER_ERROR


def _token_source(settings: CliSettings, args: argparse.Namespace) -> str:
    if args.token:
        return "the --token value"
    if settings.token:
        return "FNBOX_TOKEN"
    return f"the token in {settings.data_dir / TOKEN_FILE}"


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"fnbox: error: {message}\n")
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
