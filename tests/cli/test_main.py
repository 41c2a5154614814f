"""Argument parsing, option resolution and error lines, run in-process (no control service).

Errors that need a server reply use the scripted grpc.aio server of tests/client; the CLI runs
in a worker thread because it starts its own event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fnbox.cli.commands import functions, instances, invoke, services, workspaces
from fnbox.cli.main import main
from fnbox.cli.parser import Register, build_parser

from tests.client.conftest import Scripted
from tests.client.scripted_server import GOOD_TOKEN

REGISTERS: list[Register] = [
    functions.register,
    instances.register,
    invoke.register,
    workspaces.register,
    services.register,
]


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fnbox: error: ")
    return lines[0].removeprefix("fnbox: error: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["--output", "json", "--target", "h:1", "functions", "get", "fn_a"],
        ["functions", "get", "fn_a", "--output", "json", "--target", "h:1"],
        ["functions", "--target", "h:1", "get", "--output", "json", "fn_a"],
    ],
)
def test_global_options_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser(REGISTERS).parse_args(argv)
    assert (args.output, args.target, args.function) == ("json", "h:1", "fn_a")


@pytest.mark.parametrize(
    ("argv", "positional"),
    [
        (["invoke", "in_a", "--event", "e.json"], "invoke_target"),
        (["tokens", "delete", "tk_a"], "token_name"),
    ],
)
def test_positionals_do_not_clobber_global_options(argv: list[str], positional: str) -> None:
    parser = build_parser(REGISTERS)
    for args in (
        parser.parse_args(["--target", "h:1", "--token", "secret", *argv]),
        parser.parse_args([*argv, "--target", "h:1", "--token", "secret"]),
    ):
        assert (args.target, args.token) == ("h:1", "secret")
        assert getattr(args, positional) == argv[-1 if positional == "token_name" else 1]


def test_global_defaults_are_not_overwritten_by_subcommands() -> None:
    args = build_parser(REGISTERS).parse_args(["functions", "list"])
    assert (args.output, args.target, args.token, args.data_dir) == ("table", None, None, None)


def test_usage_errors_are_one_line_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invoke", "fn_a"]) == 2
    message = one_error_line(capsys.readouterr().err)
    assert "one of the arguments --event --request is required" in message
    assert main(["functions", "create", "--type", "lambda"]) == 2
    assert "invalid choice: 'lambda'" in one_error_line(capsys.readouterr().err)


def test_missing_token_explains_where_tokens_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FNBOX_TOKEN", raising=False)
    assert main(["--data-dir", str(tmp_path), "functions", "list"]) == 2
    message = one_error_line(capsys.readouterr().err)
    assert "--token" in message and "FNBOX_TOKEN" in message and "fnbox serve" in message
    assert str(tmp_path / "admin.token") in message


def test_unreachable_server_exits_3_and_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    monkeypatch.setenv("FNBOX_TARGET", f"127.0.0.1:{unused_port}")
    assert main(["--token", "t", "functions", "list"]) == 3
    message = one_error_line(capsys.readouterr().err)
    assert f"127.0.0.1:{unused_port}" in message and "fnbox serve" in message


def test_missing_and_invalid_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unused_port: int
) -> None:
    common = ["--token", "t", "--target", f"127.0.0.1:{unused_port}"]
    code = tmp_path / "fn.js"
    code.write_text("async function onTrack() {}")
    assert (
        main(
            [
                *common,
                "run",
                "--type",
                "destination",
                "--code",
                str(code),
                "--event",
                str(tmp_path / "none.json"),
            ]
        )
        == 2
    )
    assert one_error_line(capsys.readouterr().err).endswith("none.json: no such file")
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "track",,}')
    assert main([*common, "invoke", "fn_a", "--event", str(bad)]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"{bad}: invalid JSON at line 1 column 18: Expecting property name enclosed in "
        "double quotes"
    )


def test_token_file_in_the_data_dir_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unused_port: int
) -> None:
    (tmp_path / "admin.token").write_text("from-file\n")
    status = main(
        ["--data-dir", str(tmp_path), "--target", f"127.0.0.1:{unused_port}", "functions", "list"]
    )
    assert status == 3  # it got as far as connecting


async def run_cli(argv: list[str]) -> int:
    return await asyncio.to_thread(main, argv)


async def test_server_errors_are_one_line(
    scripted: Scripted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--target", scripted.target, "--token", GOOD_TOKEN]
    assert await run_cli([*common, "functions", "get", "missing"]) == 1
    assert one_error_line(capsys.readouterr().err) == "function 'missing' not found"

    code = tmp_path / "fn.js"
    code.write_text("async function onTrack( {")
    assert await run_cli([*common, "functions", "update", "bad-code", "--code", str(code)]) == 2
    assert one_error_line(capsys.readouterr().err) == (
        f"{code}: syntax error at line 3, column 7: Unexpected token"
    )

    assert (
        await run_cli(["--target", scripted.target, "--token", "nope", "functions", "get", "x"])
        == 1
    )
    message = one_error_line(capsys.readouterr().err)
    assert message == "authentication failed (bad token): check the --token value"


async def test_a_dead_worker_is_not_called_an_unavailable_server(
    scripted: Scripted, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--target", scripted.target, "--token", GOOD_TOKEN]
    # Out of memory: said as the server said it, not retried, nothing about trying again.
    assert await run_cli([*common, "functions", "get", "oom"]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        "the function ran out of memory: its worker's JavaScript heap reached the 64 MiB limit"
        " (executor heap_mib), and the worker was stopped (worker 7)"
    )
    assert scripted.servicer.calls["oom"] == 1
    # Another crash, after the client's own retries: worth trying again.
    assert await run_cli([*common, "functions", "get", "flaky-9"]) == 1
    assert one_error_line(capsys.readouterr().err) == "worker crashed; try again"


async def test_functions_get_prints_key_value_lines(
    scripted: Scripted, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--target", scripted.target, "--token", GOOD_TOKEN, "functions", "get", "fn_x"]
    assert await run_cli(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "name:             fn_x"
    assert "display name:     Bearer good-token" in out


# Runs ``python -m fnbox.cli ARGS`` with SIGINT at Python's default handler, as when typed at a
# terminal: a program started with SIGINT ignored (a background job of a non-interactive shell,
# e.g. `make test &`) inherits the ignore and rightly keeps it.
_AT_A_TERMINAL = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('fnbox.cli', run_name='__main__', alter_sys=True)"
)


async def test_ctrl_c_exits_130_quietly(scripted: Scripted) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _AT_A_TERMINAL,
        "--target",
        scripted.target,
        "--token",
        GOOD_TOKEN,
        "functions",
        "get",
        "hang",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    async with asyncio.timeout(20):
        await scripted.servicer.hanging.wait()  # the call is in flight
        process.send_signal(signal.SIGINT)
        stdout, stderr = await process.communicate()
    assert process.returncode == 130
    assert stdout == b"" and stderr == b""
