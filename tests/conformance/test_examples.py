"""The examples run exactly as their READMEs show: each `fnbox run ...` command of
examples/*/README.md is run as a subprocess (the installed `fnbox` CLI) against `fnbox serve`
(started with `FNBOX_EXECUTOR__EGRESS_ALLOW=127.0.0.1/32`, as the READMEs say), and its JSON
output must equal the README's expected output, apart from `durationMs` and stack traces.

Examples that call an HTTP API use examples/receiver.py on a free port: the README's settings
file is copied with the receiver's real port instead of 8787, everything else is unchanged.

SPEC → tests (the examples exercise, through the CLI)
- §2 request headers/json/text, Segment.identify/track → test_github_source_example,
  test_github_source_example_deploys_as_its_readme_shows
- §6 crypto.createHmac against a sensitive setting, §3 ValidationError
  → test_stripe_source_example_accepts_a_signed_delivery,
    test_stripe_source_example_rejects_a_tampered_delivery
- §6 fetch to a URL from settings, egress allow list → test_slack_destination_example
- §1 insert returns the modified event, §3 DropEvent
  → test_redact_insert_example_redacts_personal_data, test_redact_insert_example_drops_test_events
- §4 onBatch per-event statuses → test_batch_destination_example
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e.system import REPO, System

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = REPO / "examples"
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
FNBOX = Path(sys.executable).with_name("fnbox")


@dataclass
class Documented:
    """One `fnbox run` command of a README and the output the README shows for it."""

    argv: list[str]
    expected: Any


def documented_runs(example: str) -> list[Documented]:
    """Every `fnbox run` command of the example's README, paired with the next JSON block."""
    text = (EXAMPLES / example / "README.md").read_text()
    runs: list[Documented] = []
    pending: list[str] | None = None
    for language, body in FENCE.findall(text):
        if language == "sh":
            for line in body.replace("\\\n", " ").splitlines():
                if line.strip().startswith("fnbox run "):
                    pending = shlex.split(line)
        elif language == "json" and pending is not None:
            runs.append(Documented(pending, json.loads(body)))
            pending = None
    assert runs, f"no `fnbox run` command with an expected output in {example}/README.md"
    return runs


def stable(value: Any) -> Any:
    """``value`` without what varies between runs: durations, stacks, local ports."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in ("durationMs", "stack")}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:8787", value)
    return value


def cli_env(system: System) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FNBOX_")}
    return env | {"FNBOX_TARGET": system.target, "FNBOX_TOKEN": system.token}


async def fnbox(system: System, argv: list[str]) -> Any:
    """Run ``argv`` (starting with ``fnbox``) in the repository root; its JSON output."""
    assert argv[0] == "fnbox"
    process = await asyncio.create_subprocess_exec(
        str(FNBOX),
        *argv[1:],
        cwd=REPO,
        env=cli_env(system),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return json.loads(out)


class Receiver:
    """examples/receiver.py on a free port; ``take()`` returns the next request it printed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port

    async def take(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 10)
        record: dict[str, Any] = json.loads(line)
        return record

    def settings_copy(self, argv: list[str], tmp_path: Path) -> list[str]:
        """``argv`` with its --settings file replaced by a copy that uses this port."""
        at = argv.index("--settings") + 1
        original = (REPO / argv[at]).read_text()
        assert "127.0.0.1:8787" in original
        copy = tmp_path / "settings.json"
        copy.write_text(original.replace("127.0.0.1:8787", f"127.0.0.1:{self.port}"))
        return [*argv[:at], str(copy), *argv[at + 1 :]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "receiver.py"), "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        match = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", first)
        assert match, first
        yield Receiver(process, int(match.group(1)))
    finally:
        process.terminate()
        await process.wait()


async def run_documented(system: System, run: Documented, argv: list[str] | None = None) -> Any:
    output = await fnbox(system, argv or run.argv)
    assert stable(output) == stable(run.expected)
    return output


async def test_github_source_example(served: System) -> None:
    (run,) = documented_runs("github-source")
    output = await run_documented(served, run)
    assert output["outcome"] == "OK"
    identify, push = output["events"]
    assert (identify["type"], identify["userId"]) == ("identify", "github:583231")
    assert (push["event"], push["properties"]["commits"]) == ("Code Pushed", 2)


async def test_github_source_example_deploys_as_its_readme_shows(served: System) -> None:
    text = (EXAMPLES / "github-source" / "README.md").read_text()
    deploy = text.split("## Deploy it", 1)[1]
    (commands,) = [body for language, body in FENCE.findall(deploy) if language == "sh"]
    ids: dict[str, str] = {}
    for line in commands.replace("\\\n", " ").splitlines():
        argv = [ids.get(word, word) for word in shlex.split(line)]
        output = await fnbox(served, [*argv, "--output", "json"])
        if argv[1:3] == ["functions", "create"]:
            ids["FUNCTION_ID"] = output["id"]
        if argv[1:3] == ["instances", "create"]:
            instance = output
    assert instance["webhookUrl"].endswith(instance["id"])
    (run,) = documented_runs("github-source")
    request = run.argv[run.argv.index("--request") + 1]
    invoked = await fnbox(
        served, ["fnbox", "invoke", instance["id"], "--request", request, "--output", "json"]
    )
    assert stable(invoked["events"]) == stable(run.expected["events"])


async def test_stripe_source_example_accepts_a_signed_delivery(served: System) -> None:
    signed, _ = documented_runs("stripe-source")
    output = await run_documented(served, signed)
    (order,) = output["events"]
    assert (order["event"], order["properties"]["revenue"]) == ("Order Completed", 49.99)


async def test_stripe_source_example_rejects_a_tampered_delivery(served: System) -> None:
    _, tampered = documented_runs("stripe-source")
    assert "request-tampered.json" in " ".join(tampered.argv)
    output = await run_documented(served, tampered)
    assert output["outcome"] == "VALIDATION_ERROR"
    assert output["error"]["message"] == "invalid Stripe signature"
    assert "events" not in output


async def test_slack_destination_example(
    served: System, receiver: Receiver, tmp_path: Path
) -> None:
    (run,) = documented_runs("slack-destination")
    output = await run_documented(served, run, receiver.settings_copy(run.argv, tmp_path))
    assert [(r["method"], r["status"]) for r in output["requests"]] == [("POST", 200)]
    got = await receiver.take()
    assert got["path"] == "/services/T0000/B0000/XXXXXXXX"
    assert got["body"] == {
        "text": "*Order Completed* by user_1234 — orderId: order_5678, revenue: 49.99, "
        "currency: EUR",
        "username": "Shop bot",
    }


async def test_redact_insert_example_redacts_personal_data(served: System) -> None:
    redacted, _ = documented_runs("redact-insert")
    output = await run_documented(served, redacted)
    traits = output["returned"]["traits"]
    assert traits["email"] == traits["address"] == "[redacted]"
    assert traits["plan"] == "pro" and "ip" not in output["returned"]["context"]


async def test_redact_insert_example_drops_test_events(served: System) -> None:
    _, dropped = documented_runs("redact-insert")
    output = await run_documented(served, dropped)
    assert output["outcome"] == "DROP" and "returned" not in output
    assert output["error"]["name"] == "DropEvent"


async def test_batch_destination_example(
    served: System, receiver: Receiver, tmp_path: Path
) -> None:
    (run,) = documented_runs("batch-destination")
    output = await run_documented(served, run, receiver.settings_copy(run.argv, tmp_path))
    statuses = [(s["outcome"], s["status"]) for s in output["batchStatuses"]]
    assert statuses == [("OK", 200), ("ERROR", 400), ("OK", 200)]
    got = await receiver.take()
    assert got["headers"]["authorization"] == "Bearer key_live_0123456789abcdef"
    assert [e["id"] for e in got["body"]["batch"]] == ["msg-0001", "msg-0003"]
