"""Run as ``python -m tests.bus.publisher_child URL NAMESPACE TOPIC``: publishes numbered
messages forever (single and batched publishes alternating), printing ``<id> <payload>`` for
each once the bus returned its id, until it is killed."""

from __future__ import annotations

import asyncio
import sys

from fnbox.bus import open_bus


async def main(url: str, namespace: str, topic: str) -> None:
    async with open_bus(url, namespace=namespace) as bus:
        print("ready", flush=True)
        n = 0
        while True:
            if n % 20 < 10:
                payload = b'{"n":%d}' % n
                ids = [await bus.publish(topic, payload)]
                payloads = [payload]
            else:
                payloads = [b'{"n":%d}' % (n + k) for k in range(10)]
                ids = await bus.publish_many(topic, [(p, None, None) for p in payloads])
            n += len(payloads)
            sys.stdout.write(
                "".join(f"{i} {p.decode()}\n" for i, p in zip(ids, payloads, strict=True))
            )
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
