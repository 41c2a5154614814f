"""Measure a bus: ``python -m fnbox.bus.bench URL [--messages N] [--size BYTES] [--batch B]``.

Publishes N messages of SIZE bytes with ``publish_many`` in batches of B, then consumes and
acks them all with one consumer (acks of a batch sent together), and prints messages/s for
both phases plus single-message ``publish`` latency. Uses a throw-away namespace (its NATS
stream is deleted afterwards; give SQLite a scratch file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from fnbox.bus import Bus, open_bus

__all__ = ["measure"]


async def measure(url: str, *, messages: int, size: int, batch: int) -> dict[str, float]:
    """Run the three phases against a fresh namespace on ``url``; returns the figures."""
    namespace = f"bench_{uuid.uuid4().hex[:8]}"
    bus = open_bus(url, namespace=namespace)
    await bus.start()
    try:
        return await _phases(bus, messages=messages, size=size, batch=batch)
    finally:
        delete = getattr(bus, "delete_namespace", None)
        if delete is not None:
            await delete()
        await bus.close()


async def _phases(bus: Bus, *, messages: int, size: int, batch: int) -> dict[str, float]:
    payload = b'{"p":"' + b"x" * max(size - 8, 0) + b'"}'
    headers = {"messageId": "m", "traceparent": "00-" + "0" * 32 + "-" + "0" * 16 + "-01"}
    started = time.perf_counter()
    for first in range(0, messages, batch):
        count = min(batch, messages - first)
        await bus.publish_many("bench.t", [(payload, headers, None)] * count)
    publish_s = time.perf_counter() - started

    started = time.perf_counter()
    consumed = 0
    while consumed < messages:
        got = await bus.consume("bench.t", "bench", batch=batch, wait=5, lease=60)
        if not got:
            raise RuntimeError(f"only {consumed} of {messages} messages came back")
        await asyncio.gather(*(d.ack() for d in got))
        consumed += len(got)
    consume_s = time.perf_counter() - started

    latencies = []
    for _ in range(200):
        t = time.perf_counter()
        await bus.publish("bench.single", payload, headers)
        latencies.append(time.perf_counter() - t)
    latencies.sort()
    return {
        "publish_many_msgs_per_s": messages / publish_s,
        "consume_ack_msgs_per_s": messages / consume_s,
        "publish_p50_ms": statistics.median(latencies) * 1000,
        "publish_p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    figures = asyncio.run(
        measure(args.url, messages=args.messages, size=args.size, batch=args.batch)
    )
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
