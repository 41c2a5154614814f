"""kill -9 at any moment loses no acknowledged webhook: after a restart everything acked
reaches the destination (at least once; duplicates are counted, not forbidden)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest
from fnbox.client import FnboxClient
from fnbox.gateway.enrich import message_id_for

from tests.e2e import pipeline
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually

pytestmark = pytest.mark.timeout(300)


async def _kill_when(acked: list[str], count: int, kill: Callable[[], None]) -> None:
    await eventually(lambda: len(acked) >= count, within=120, what="acks", every=0.01)
    kill()


async def test_kill9_mid_load_loses_no_acknowledged_webhook(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    src = await pipeline.source(client)
    await pipeline.destination(client, "crash", sink.url("crash"), [src.name])
    url = pipeline.webhook_url(system.http, src)
    acked: list[str] = []
    killer = asyncio.create_task(_kill_when(acked, 150, system.kill9))
    await pipeline.post_many(url, [pipeline.track(i) for i in range(400)], acked=acked)
    await killer
    assert 150 <= len(acked) < 400
    await system.restart()
    more: list[str] = []
    await pipeline.post_many(url, [pipeline.track(i, user="after") for i in range(50)], acked=more)
    assert len(more) == 50
    expected = {message_id_for(webhook_id, 0) for webhook_id in [*acked, *more]}
    await eventually(
        lambda: expected <= set(sink.message_ids("crash")),
        within=120,
        what=lambda: (
            f"{len(expected - set(sink.message_ids('crash')))} acked events\n" + system.logs()
        ),
    )
    duplicates = sum(n - 1 for n in sink.message_ids("crash").values())
    print(f"acked {len(expected)}, delivered {len(sink.received('crash'))}, dup {duplicates}")


async def test_replica_killed_while_others_run(
    system: System, client: FnboxClient, sink: Sink
) -> None:
    if not system.scale_out:
        pytest.skip("replicas are the scale-out deployment's (separate processes)")
    src = await pipeline.source(client)
    await pipeline.destination(client, "replicas", sink.url("replicas"), [src.name])
    ports = itertools.cycle(system.http_ports)
    urls = lambda: pipeline.webhook_url(f"http://127.0.0.1:{next(ports)}", src)  # noqa: E731
    acked: list[str] = []

    def kill_some() -> None:
        system.kill9("delivery0")
        system.kill9("gateway1")

    killer = asyncio.create_task(_kill_when(acked, 100, kill_some))
    await pipeline.post_many(urls, [pipeline.track(i) for i in range(300)], acked=acked)
    await killer
    assert len(acked) >= 150  # the surviving gateway kept accepting
    expected = {message_id_for(webhook_id, 0) for webhook_id in acked}
    await eventually(
        lambda: expected <= set(sink.message_ids("replicas")),
        within=120,
        what=lambda: f"{len(expected - set(sink.message_ids('replicas')))} acked events",
    )
