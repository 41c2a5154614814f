"""What was acknowledged survives: closing and reopening, and kill -9 of a publisher."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.bus.conftest import BusTarget
from tests.bus.helpers import nothing_within, take

REPO = Path(__file__).resolve().parents[2]


async def test_messages_survive_close_and_reopen(bus_target: BusTarget) -> None:
    # One lease throughout: on JetStream it is the consumer's ack_wait, shared by its messages.
    lease = 2.0
    async with bus_target.open() as bus:
        ids = await bus.publish_many(
            "events.r", [(b"%d" % n, {"n": str(n)}, None) for n in range(5)]
        )
        (done,) = await take(bus, "events.r", "g", 1, batch=1, lease=lease)
        await done.ack()
        await take(bus, "events.r", "g", 1, batch=1, lease=lease)  # leased, never settled
    async with bus_target.open() as reopened:
        # Each is acknowledged as it comes: ids[1] comes back only when its old lease runs
        # out, and the others, delivered at once, must not outlive theirs meanwhile.
        got = await take(reopened, "events.r", "g", 4, lease=lease, ack=True)
        assert sorted(d.message.id for d in got) == sorted(ids[1:])
        assert {d.message.id: d.message.attempt for d in got}[ids[1]] == 2
        assert {d.message.headers["n"] for d in got} == {"1", "2", "3", "4"}
        assert await nothing_within(reopened, "events.r", "g", lease + 0.5, lease=lease)


async def test_every_id_a_killed_publisher_printed_is_consumable(bus_target: BusTarget) -> None:
    """kill -9 mid-publish: every id the child printed (after publish returned) is stored."""
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "tests.bus.publisher_child"]
    # A plain Popen read from a thread: asyncio's child watchers vary across loops and versions.
    child = await asyncio.to_thread(
        subprocess.Popen,
        [*command, bus_target.url, bus_target.namespace, "webhooks.k9"],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=path),
    )
    assert child.stdout is not None
    printed: dict[str, bytes] = {}
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        assert line == b"ready\n"
        while len(printed) < 200:
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
            message_id, payload = line.decode().split()
            printed[message_id] = payload.encode()
        child.send_signal(signal.SIGKILL)
        # Lines already in the pipe were printed after their publish returned: they count too.
        rest = await asyncio.wait_for(asyncio.to_thread(child.stdout.read), 30)
        for text in rest.decode().splitlines():
            if text.endswith("}"):  # a line cut by the kill has no closing brace
                message_id, payload = text.split()
                printed[message_id] = payload.encode()
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    async with bus_target.open() as bus:
        total = await bus.pending("webhooks.k9", "after")
        assert total >= len(printed)
        got = await take(bus, "webhooks.k9", "after", total, batch=500)
    stored = {d.message.id: d.message.data for d in got}
    assert {i: stored.get(i) for i in printed} == printed
