"""10,000 webhooks with Node workers (and, scaled out, replicas) killed at random: every
acknowledged event reaches the sink at least once. Reports events/s end to end, ack latency
p50/p99 and duplicates. Marked slow: run with ``pytest -m slow tests/e2e/test_load.py -s``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time

import pytest
from fnbox.client import FnboxClient
from fnbox.gateway.enrich import message_id_for

from tests.e2e import pipeline
from tests.e2e.chaos import Chaos
from tests.e2e.sink import Sink
from tests.e2e.system import System, eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

WEBHOOKS = int(os.environ.get("FNBOX_LOAD_WEBHOOKS", "10000"))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def test_load_with_random_kills(system: System, client: FnboxClient, sink: Sink) -> None:
    src = await pipeline.source(client)
    await pipeline.destination(client, "load", sink.url("load"), [src.name])
    ports = itertools.cycle(system.http_ports)
    url = lambda: pipeline.webhook_url(f"http://127.0.0.1:{next(ports)}", src)  # noqa: E731
    chaos = Chaos(system)
    chaos_task = asyncio.create_task(chaos.run())
    started = time.monotonic()
    acked: list[str] = []
    try:
        _, latencies, refused = await pipeline.post_many(
            url,
            [pipeline.track(i) for i in range(WEBHOOKS)],
            concurrency=64,
            acked=acked,
            tries=3,
        )
        posted = time.monotonic()
        expected = {message_id_for(webhook_id, 0) for webhook_id in acked}
        # Keep killing while the backlog drains, up to 90% delivered.
        await eventually(
            lambda: len(expected & set(sink.message_ids("load"))) >= 0.9 * len(expected),
            within=900,
            what="90% of the events",
            every=0.5,
        )
    finally:
        chaos_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chaos_task
    await system.restart()  # replicas the chaos left down
    await eventually(
        lambda: expected <= set(sink.message_ids("load")),
        within=900,
        what=lambda: f"{len(expected - set(sink.message_ids('load')))} acked events missing",
        every=0.5,
    )
    done = time.monotonic()
    counts = sink.message_ids("load")
    report = {
        "backend": "scale-out" if system.scale_out else "embedded",
        "webhooks": WEBHOOKS,
        "acknowledged": len(acked),
        "attempts_refused_or_cut": refused,
        "delivered": len(sink.received("load")),
        "duplicates": sum(n - 1 for n in counts.values()),
        "unacked_but_delivered": len(set(counts) - expected),
        "events_per_s_end_to_end": round(len(expected) / (done - started), 1),
        "ingest_s": round(posted - started, 1),
        "total_s": round(done - started, 1),
        "ack_p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "ack_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "node_workers_killed": chaos.workers_killed,
        "replicas_killed": len(chaos.replicas_killed),
    }
    print("LOAD " + json.dumps(report))
    # Only one replica is down at a time, so a sender retrying elsewhere gets most in.
    assert len(acked) >= WEBHOOKS // 2
