"""The ``fnbox`` command against the real control service.

The main flow runs the installed console script in subprocesses; the other cases run
``fnbox.cli.main.main`` in a worker thread (it starts its own event loop) to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fnbox.cli.main import main

from tests.conftest import RunningServer

DESTINATION_CODE = """
async function onTrack(event, settings) {
  console.log(`track ${event.event} in ${settings.region}`);
  if (event.event === 'Boom') throw new TypeError('boom');
}
"""
SOURCE_CODE = """
async function onRequest(request, settings) {
  const body = request.json();
  console.log('hook ' + body.name + ' ' + settings.tag);
  Segment.identify({ userId: body.id, traits: { name: body.name } });
}
"""
SCHEMA = [
    {"name": "region", "label": "Region", "type": "string", "required": True},
    {"name": "apiKey", "label": "API key", "type": "STRING", "sensitive": True},
]
FNBOX = str(Path(sys.executable).parent / "fnbox")


@dataclass
class Ran:
    status: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    @property
    def error(self) -> str:
        """The single error line, without its prefix."""
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("fnbox: error: "), self.err
        return lines[0].removeprefix("fnbox: error: ")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "dest.js").write_text(DESTINATION_CODE)
    (tmp_path / "source.js").write_text(SOURCE_CODE)
    (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "settings.json").write_text('{"region": "eu", "apiKey": "s3cret"}')
    (tmp_path / "event.json").write_text('{"type": "track", "event": "Signed Up"}')
    (tmp_path / "boom.json").write_text('{"type": "track", "event": "Boom"}')
    (tmp_path / "batch.json").write_text('[{"type":"track","event":"a"},{"type":"track"}]')
    (tmp_path / "request.json").write_text(
        json.dumps(
            {"method": "POST", "url": "https://h/x?y=1", "body": {"id": "u1", "name": "Ann"}}
        )
    )
    return tmp_path


class Cli:
    """Runs ``fnbox`` in-process against one server, capturing its output."""

    def __init__(self, server: RunningServer, capsys: pytest.CaptureFixture[str]) -> None:
        self.common = ["--target", server.address, "--token", server.admin_token]
        self.capsys = capsys

    async def __call__(self, *args: str, common: bool = True) -> Ran:
        self.capsys.readouterr()
        status = await asyncio.to_thread(main, [*(self.common if common else []), *args])
        captured = self.capsys.readouterr()
        return Ran(status, captured.out, captured.err)

    async def json_of(self, *args: str, common: tuple[str, ...] | None = None) -> dict[str, Any]:
        """``args`` with ``--output json``, which must succeed with an object; ``common``:
        global options in place of this server's admin ones."""
        ran = await self(*(common or ()), "--output", "json", *args, common=common is None)
        found = ran.json()
        assert ran.status == 0 and isinstance(found, dict), ran.err
        return found

    async def create_destination(
        self, name: str, code: Path, *options: str, common: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """``functions create --type destination`` (with ``options``), its JSON."""
        return await self.json_of(
            *("functions", "create", "--type", "destination", "--name", name),
            *("--code", str(code), *options),
            common=common,
        )


@pytest.fixture
def cli(running_server: RunningServer, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(running_server, capsys)


async def console_script(server: RunningServer, *args: str, stdin: bytes = b"") -> Ran:
    env = {**os.environ, "FNBOX_TARGET": server.address, "FNBOX_TOKEN": server.admin_token}
    process = await asyncio.create_subprocess_exec(
        FNBOX,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def test_create_deploy_configure_invoke(running_server: RunningServer, files: Path) -> None:
    created = await console_script(
        running_server,
        "functions",
        "create",
        "--type",
        "destination",
        "--name",
        "Audit",
        "--code",
        str(files / "dest.js"),
        "--settings-schema",
        str(files / "schema.json"),
    )
    assert created.status == 0 and created.err == ""
    match = re.search(r"id (fn_\w+)", created.out)
    assert match, created.out
    function_id = match.group(1)
    assert "/functions/" + function_id in created.out
    assert f"fnbox functions deploy {function_id}" in created.out

    deployed = await console_script(running_server, "functions", "deploy", function_id)
    assert (deployed.status, deployed.out) == (0, f"Deployed version 1 of function {function_id}\n")

    instance = await console_script(
        running_server,
        "instances",
        "create",
        "--function",
        function_id,
        "--name",
        "Prod",
        "--settings",
        "-",
        stdin=(files / "settings.json").read_bytes(),
    )
    assert instance.status == 0, instance.err
    instance_id = re.findall(r"id (in_\w+)", instance.out)[0]

    invoked = await console_script(
        running_server, "invoke", instance_id, "--event", str(files / "event.json")
    )
    assert invoked.status == 0 and invoked.err == ""
    lines = invoked.out.splitlines()
    assert lines[0] == "OK"
    assert lines[1:3] == ["logs:", "  track Signed Up in eu"]
    assert re.fullmatch(r"duration: \d+\.\d ms", lines[-1])

    as_json = await console_script(
        running_server,
        "invoke",
        instance_id,
        "--event",
        str(files / "event.json"),
        "--output",
        "json",
    )
    data = json.loads(as_json.out)
    assert data["outcome"] == "OK" and data["logs"] == ["track Signed Up in eu"]
    assert set(data) <= {"outcome", "logs", "durationMs", "version"}


async def test_run_unsaved_source_code(cli: Cli, files: Path) -> None:
    (files / "tag.json").write_text('{"tag": "t1"}')
    ran = await cli(
        "--output",
        "json",
        "run",
        "--type",
        "source",
        "--code",
        str(files / "source.js"),
        "--request",
        str(files / "request.json"),
        "--settings",
        str(files / "tag.json"),
    )
    assert ran.status == 0, ran.err
    data = ran.json()
    assert isinstance(data, dict)
    assert data["outcome"] == "OK" and data["logs"] == ["hook Ann t1"]
    [event] = data["events"]
    assert (event["type"], event["userId"], event["traits"]) == ("identify", "u1", {"name": "Ann"})

    human = await cli(
        "run",
        "--type",
        "source",
        "--code",
        str(files / "source.js"),
        "--request",
        str(files / "request.json"),
    )
    assert human.out.startswith("OK\nevents (1):\n  {\n")
    assert '    "userId": "u1"' in human.out


async def test_user_exceptions_exit_0_with_the_error(cli: Cli, files: Path) -> None:
    function = await cli.create_destination("A", files / "dest.js")
    (files / "region.json").write_text('{"region": "us"}')
    ran = await cli(
        "invoke",
        function["id"],
        "--event",
        str(files / "boom.json"),
        "--settings",
        str(files / "region.json"),
    )
    assert ran.status == 0 and ran.err == ""
    lines = ran.out.splitlines()
    assert lines[0] == "ERROR"
    assert "error: TypeError: boom" in lines
    assert any(line.strip().startswith("at ") for line in lines)  # the stack
    assert "  track Boom in us" in lines

    batch = await cli(
        "--output",
        "json",
        "invoke",
        function["id"],
        "--event",
        str(files / "batch.json"),
        "--settings",
        str(files / "region.json"),
    )
    assert batch.status == 0, batch.err
    data = batch.json()
    assert isinstance(data, dict) and len(data["batchStatuses"]) == 2


async def test_errors_are_one_line_with_the_right_status(
    cli: Cli, files: Path, running_server: RunningServer
) -> None:
    (files / "bad.js").write_text("async function onTrack(event {\n}\n")
    bad = await cli(
        "functions",
        "create",
        "--type",
        "destination",
        "--name",
        "B",
        "--code",
        str(files / "bad.js"),
    )
    assert bad.status == 2
    assert re.fullmatch(rf"{re.escape(str(files / 'bad.js'))}: .*line 1, column \d+.*", bad.error)

    missing = await cli("functions", "get", "fn_doesnotexist")
    assert (
        missing.status == 1 and "not found" in missing.error and "fn_doesnotexist" in missing.error
    )

    wrong = await cli(
        "--target",
        running_server.address,
        "--token",
        "fnbox_wrong",
        "functions",
        "list",
        common=False,
    )
    assert wrong.status == 1 and wrong.error.startswith("authentication failed")

    (files / "broken.json").write_text('{"type": "track"')
    broken = await cli("invoke", "fn_x", "--event", str(files / "broken.json"))
    assert broken.status == 2 and "broken.json: invalid JSON at line 1 column" in broken.error

    absent = await cli(
        "run",
        "--type",
        "source",
        "--code",
        str(files / "nope.js"),
        "--request",
        str(files / "request.json"),
    )
    assert absent.status == 2 and absent.error.endswith("nope.js: no such file")

    wrong_input = await cli(
        "run",
        "--type",
        "source",
        "--code",
        str(files / "source.js"),
        "--event",
        str(files / "event.json"),
    )
    assert wrong_input.status == 2 and wrong_input.out == ""
    assert wrong_input.error == (
        f"{files / 'source.js'}: a source function takes a webhook request, not an event; "
        "give it --request FILE (a webhook request)"
    )


async def test_listing_and_showing_resources(cli: Cli, files: Path) -> None:
    function = await cli.create_destination(
        "Audit", files / "dest.js", "--settings-schema", str(files / "schema.json")
    )
    fid = function["id"]
    assert function["settingsSchema"][1]["sensitive"] is True
    (files / "dest2.js").write_text(DESTINATION_CODE + "// v2\n")
    assert (await cli("functions", "update", fid, "--code", str(files / "dest2.js"))).status == 0
    assert (await cli("functions", "deploy", fid, "--version", "1")).status == 0

    table = (await cli("functions", "list")).out.splitlines()
    assert table[0].split() == ["ID", "NAME", "TYPE", "LATEST", "DEPLOYED", "UPDATED"]
    row = next(line for line in table if line.startswith(fid))
    assert row.split()[1:5] == ["Audit", "destination", "2", "1"]
    assert table[0].index("NAME") == row.index("Audit")  # aligned

    shown = (await cli("functions", "get", fid)).out
    assert re.search(rf"^id:\s+{fid}$", shown, re.M)
    assert re.search(r"^settings:\s+region\s+string\s+required\s+Region$", shown, re.M)
    assert "console.log(`track" in shown

    versions = (await cli("functions", "versions", fid)).out.splitlines()
    assert [line.split()[:2] for line in versions[1:]] == [["2", "latest"], ["1", "deployed"]]

    data = await cli.json_of(
        "instances",
        "create",
        "--function",
        fid,
        "--name",
        "Prod",
        "--settings",
        str(files / "settings.json"),
    )
    assert data["settings"] == {"region": "eu"} and data["sensitiveSettings"] == ["apiKey"]
    shown = (await cli("instances", "get", data["id"])).out
    assert "s3cret" not in shown and re.search(r"^sensitive settings:\s+apiKey", shown, re.M)
    disabled = await cli("instances", "update", data["id"], "--disabled")
    assert disabled.out == f"Updated instance {data['id']} (disabled)\n"
    listed = await cli("--output", "json", "instances", "list", "--function", fid)
    assert [i["enabled"] for i in listed.json()["instances"]] == [False]  # type: ignore[index]

    for argv in (
        ["functions", "list"],
        ["functions", "versions", fid],
        ["instances", "list"],
        ["functions", "get", fid],
        ["tokens", "list"],
    ):
        assert isinstance((await cli("--output", "json", *argv)).json(), dict)

    in_use = await cli("functions", "delete", fid)
    assert (in_use.status, in_use.error) == (
        1,
        f"function {fid} has instances (fnbox instances list --function {fid}): delete them "
        "first, or add --force to delete them with it",
    )
    assert (await cli("instances", "delete", data["id"])).out == f"Deleted instance {data['id']}\n"
    assert (await cli("functions", "delete", fid)).status == 0
    assert (await cli("functions", "get", fid)).status == 1


async def test_workspaces_and_tokens(cli: Cli, running_server: RunningServer, files: Path) -> None:
    created = await cli("workspaces", "create", "Team B")
    assert created.status == 0, created.err
    secret = re.findall(r"Admin token \(shown only once\): (\S+)", created.out)[0]
    team_b = ["--target", running_server.address, "--token", secret]
    token = await cli(
        *team_b,
        "--output",
        "json",
        "tokens",
        "create",
        "--role",
        "read-only",
        "--description",
        "ci",
        common=False,
    )
    data = token.json()
    assert isinstance(data, dict) and data["role"] == "ROLE_READ_ONLY" and data["secret"]
    listed = (await cli(*team_b, "tokens", "list", common=False)).out
    assert re.search(rf"^{data['id']}\s+read-only\s+.*ci$", listed, re.M)
    assert (await cli(*team_b, "tokens", "delete", data["id"], common=False)).status == 0
    # A new workspace: empty lists say so (not a lone header), and what to do.
    assert (await cli(*team_b, "functions", "list", common=False)).out == (
        "No functions yet: create one with 'fnbox functions create'.\n"
    )
    assert (await cli(*team_b, "instances", "list", common=False)).out == (
        "No instances: create one with 'fnbox instances create'.\n"
    )
    assert (await cli(*team_b, "dlq", "list", common=False)).out == "No dead letters.\n"
    assert (await cli(*team_b, "usage", common=False)).out == "No usage recorded.\n"
    empty = await cli(*team_b, "--output", "json", "dlq", "list", common=False)
    assert empty.json() == {"deadLetters": []}
    fid = (await cli.create_destination("Quiet", files / "dest.js", common=tuple(team_b)))["id"]
    quiet = (await cli(*team_b, "logs", fid, common=False)).out
    assert quiet.startswith(f"No stored failed or sampled invocations of {fid}. ")
    # Versions name their author by the token's id; an instance of a function never deployed
    # says how to deploy it.
    versions = (await cli(*team_b, "functions", "versions", fid, common=False)).out.splitlines()
    assert re.fullmatch(r"1\s+latest\s+tk_\w+\s+\S+ \S+\s+-", versions[1]), versions
    instance = await cli.json_of(
        "instances", "create", "--function", fid, "--name", "q", common=tuple(team_b)
    )
    undeployed = await cli(
        *team_b, "invoke", instance["id"], "--event", str(files / "event.json"), common=False
    )
    assert (undeployed.status, undeployed.error) == (
        1,
        f"function {fid} has no deployed version: deploy one with 'fnbox functions deploy {fid}'",
    )


async def test_code_from_stdin(cli: Cli, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(DESTINATION_CODE.encode())))
    ran = await cli(
        "run", "--type", "destination", "--code", "-", "--event", str(files / "event.json")
    )
    assert ran.status == 0 and ran.out.splitlines()[:3] == [
        "OK",
        "logs:",
        "  track Signed Up in undefined",
    ]


async def test_control_subcommand_serves_and_writes_the_token(cli: Cli, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process = await asyncio.create_subprocess_exec(
        FNBOX,
        "control",
        "--data-dir",
        str(data_dir),
        "--grpc-listen",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            first = (await process.stdout.readline()).decode()
        assert first.startswith("grpc 127.0.0.1:"), first
        target = first.split()[1]
        # No --token: the CLI reads DIR/admin.token, written by the server's first start.
        listed = await cli(
            "--data-dir", str(data_dir), "--target", target, "functions", "list", common=False
        )
        assert (listed.status, listed.err) == (0, "")
        assert listed.out.startswith("No functions yet")
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            status = await process.wait()
    assert status == 0


async def test_instances_link_an_insert_and_authenticate_webhooks(cli: Cli, files: Path) -> None:
    (files / "insert.js").write_text("async function onTrack(event) { return event }")
    (files / "secret.txt").write_text("hush\n")

    async def json_of(*args: str) -> dict[str, Any]:
        ran = await cli("--output", "json", *args)
        assert ran.status == 0, ran.err
        assert "hush" not in ran.out
        found = ran.json()
        assert isinstance(found, dict)
        return found

    async def deployed(kind: str, code: str) -> str:
        made = await json_of(
            "functions", "create", "--type", kind, "--name", kind, "--code", str(files / code)
        )
        assert (await cli("functions", "deploy", made["id"])).status == 0
        return str(made["id"])

    insert_fn = await deployed("insert-destination", "insert.js")
    insert = await json_of("instances", "create", "--name", "pass", "--function", insert_fn)
    source = await json_of(
        "instances",
        "create",
        "--name",
        "hooks",
        "--function",
        await deployed("source", "source.js"),
        "--webhook-auth",
        "hmac-sha256",
        "--webhook-secret-file",
        str(files / "secret.txt"),
    )
    auth = source["webhookAuth"]
    assert (auth["mode"], auth["hasSecret"], auth["secret"]) == ("MODE_HMAC_SHA256", True, "")
    dest = await json_of(
        "instances",
        "create",
        "--name",
        "out",
        "--function",
        await deployed("destination", "insert.js"),
        "--source",
        source["id"],
        "--insert",
        insert["id"],
    )
    assert dest["insertInstance"].endswith(insert["id"])
    assert [s.rsplit("/", 1)[-1] for s in dest["sources"]] == [source["id"]]

    shown = await cli("instances", "get", source["id"])
    assert "hush" not in shown.out
    # The header the sender must use, also when it is the default one.
    assert re.search(
        r"^webhook auth:\s+hmac-sha256 \(header X-Webhook-Signature\)$", shown.out, re.M
    )

    unlinked = await json_of("instances", "update", dest["id"], "--insert", "")
    assert unlinked["insertInstance"] == ""

    missing = await cli("instances", "update", source["id"], "--webhook-auth", "shared-secret")
    assert missing.status == 2
    assert missing.error == "--webhook-auth shared-secret needs --webhook-secret-file"
