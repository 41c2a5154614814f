"""Small helpers of the observability tests: functions, the CLI as a process."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from fnbox.client import FnboxClient
from fnbox.functions.v1 import resources_pb2

from tests.e2e.system import REPO, eventually

SECRET = "sk_live_5ecretValue42"

KEY_SETTING = resources_pb2.SettingDefinition(
    name="apiKey",
    label="API key",
    type=resources_pb2.SETTING_TYPE_STRING,
    required=True,
    sensitive=True,
)
URL_SETTING = resources_pb2.SettingDefinition(
    name="url", label="URL", type=resources_pb2.SETTING_TYPE_STRING, required=True
)

# Leaks its key everywhere a log entry looks: console, outbound URL, error, and (via the
# event) the input.
LEAKY = """
async function onTrack(event, settings) {
  console.log('calling with ' + settings.apiKey)
  const url = settings.url + '?key=' + encodeURIComponent(settings.apiKey)
  await fetch(url, { method: 'POST', body: '{}' })
  if (event.properties && event.properties.fail) throw new Error('rejected key ' + settings.apiKey)
}
"""

FAILING = """
async function onTrack(event, settings) {
  console.log('n=' + event.properties.n)
  if (event.properties.fail) throw new TypeError('failed n=' + event.properties.n)
}
"""


async def deployed(
    client: FnboxClient,
    name: str,
    code: str,
    schema: Sequence[resources_pb2.SettingDefinition] = (),
) -> resources_pb2.Function:
    fn = await client.functions.create(
        name, resources_pb2.FUNCTION_TYPE_DESTINATION, code, settings_schema=schema
    )
    return await client.functions.deploy(fn.name)


def track(n: int, *, fail: bool = False, **properties: object) -> bytes:
    import orjson

    return orjson.dumps(
        {"type": "track", "event": "E", "properties": {"n": n, "fail": fail, **properties}}
    )


class Cli:
    """``fnbox`` as a child process of the tests, with the server's address and token."""

    def __init__(self, target: str, token: str) -> None:
        self.common = ["--target", target, "--token", token]

    async def run(self, *args: str) -> tuple[int, str, str]:
        process = await self.start(*args)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode or 0, out.decode(), err.decode()

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fnbox.cli",
            *self.common,
            *args,
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


async def read_until(
    process: asyncio.subprocess.Process, needle: str, *, within: float = 30
) -> list[str]:
    """Lines of the process's stdout up to the first that contains ``needle``."""
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(within):
        while True:
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError(f"output ended before {needle!r}: {lines}")
            lines.append(raw.decode().rstrip("\n"))
            if needle in lines[-1]:
                return lines


__all__ = ["Cli", "deployed", "eventually", "read_until", "track"]
