"""Building pipelines for the tests: a source function fed by webhooks, destinations that
post to the sink, and webhook senders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from fnbox.bus import Bus, open_bus
from fnbox.client import FnboxClient
from fnbox.delivery.control import ControlPlane
from fnbox.delivery.routing import Routes
from fnbox.delivery.service import DeliveryService
from fnbox.delivery.settings import DeliverySettings
from fnbox.functions.v1 import resources_pb2
from fnbox.gateway.service import GatewayService
from fnbox.gateway.settings import GatewaySettings
from fnbox.server.app import ControlService

from tests.e2e.system import FAST_PIPELINE_ENV

SOURCE = """
async function onRequest(request, settings) {
  const body = request.json()
  for (const e of (body.events || [body])) {
    Segment.track({ event: e.event, userId: e.userId, properties: e.properties || {} })
  }
}
"""

# 5xx/429 from the endpoint → RetryError (retried); other failures are final.
DESTINATION = """
async function onTrack(event, settings) {
  const response = await fetch(settings.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event),
  })
  if (response.status >= 500 || response.status === 429) {
    throw new RetryError('endpoint answered ' + response.status)
  }
  if (!response.ok) throw new Error('endpoint answered ' + response.status)
}
"""

# Gateway and delivery settings of in-process pipelines: platform retries, discovery and
# caches in fractions of a second, so that the tests see changes soon.
FAST_GATEWAY: dict[str, Any] = {
    "listen": "127.0.0.1:0",
    "platform_retry_seconds": 0.2,
    "retry_max_seconds": 0.5,
    "discovery_seconds": 0.2,
    "instance_cache_seconds": 0.2,
}
FAST_DELIVERY: dict[str, Any] = {
    "platform_retry_seconds": 0.2,
    "discovery_seconds": 0.2,
    "routing_cache_seconds": 0.2,
    "batch_max_wait_seconds": 0.1,
}

URL_SETTING = resources_pb2.SettingDefinition(
    name="url", label="URL", type=resources_pb2.SETTING_TYPE_STRING, required=True
)


async def deployed(
    client: FnboxClient,
    name: str,
    type: resources_pb2.FunctionType,
    code: str,
    *,
    schema: Sequence[resources_pb2.SettingDefinition] = (),
    batch: resources_pb2.BatchOptions | None = None,
    limits: resources_pb2.FunctionLimits | None = None,
) -> resources_pb2.Function:
    fn = await client.functions.create(
        name, type, code, settings_schema=schema, batch=batch, limits=limits
    )
    return await client.functions.deploy(fn.name)


async def source(client: FnboxClient, name: str = "webhooks") -> resources_pb2.Instance:
    fn = await deployed(client, name, resources_pb2.FUNCTION_TYPE_SOURCE, SOURCE)
    return await client.instances.create(fn.name, name)


async def gateway_of(
    control: ControlService, tmp_path: Path, settings: GatewaySettings
) -> tuple[GatewayService, resources_pb2.Instance, ControlPlane, Bus]:
    """A started gateway of ``control`` on a SQLite bus in ``tmp_path``, with a source
    instance to post to (the caller stops the gateway, closes the plane and the bus)."""
    token = (tmp_path / "admin.token").read_text().strip()
    async with FnboxClient(control.address, token) as client:
        src = await source(client)
    bus = open_bus(f"sqlite:///{tmp_path / 'bus.db'}")
    await bus.start()
    plane = ControlPlane(control.address, token)
    gateway = GatewayService(settings=settings, bus=bus, control=plane)
    await gateway.start()
    return gateway, src, plane, bus


def services(
    bus: Bus, plane: ControlPlane, *, routes: Routes | None = None
) -> tuple[DeliveryService, GatewayService]:
    """A delivery service and a gateway on ``bus`` with the fast settings, the gateway
    routing its events itself as in ``fnbox serve`` (through ``routes``, by default the
    delivery's); neither is started."""
    delivery = DeliveryService(
        settings=DeliverySettings.model_validate(FAST_DELIVERY), bus=bus, control=plane
    )
    gateway = GatewayService(
        settings=GatewaySettings.model_validate(FAST_GATEWAY),
        bus=bus,
        control=plane,
        on_topic=delivery.notice,
        routes=delivery.routes if routes is None else routes,
    )
    return delivery, gateway


async def destination(
    client: FnboxClient,
    name: str,
    url: str,
    sources: Sequence[str],
    *,
    code: str = DESTINATION,
    batch: resources_pb2.BatchOptions | None = None,
    limits: resources_pb2.FunctionLimits | None = None,
) -> resources_pb2.Instance:
    fn = await deployed(
        client,
        name,
        resources_pb2.FUNCTION_TYPE_DESTINATION,
        code,
        schema=[URL_SETTING],
        batch=batch,
        limits=limits,
    )
    instance = await client.instances.create(
        fn.name, name, settings=orjson.dumps({"url": url}), sources=list(sources)
    )
    await connections_settled()
    return instance


async def connections_settled() -> None:
    """Wait until the routers see a connection made just now: they reuse a source's list of
    destinations for ``FNBOX_DELIVERY__ROUTING_CACHE_SECONDS`` (README: "how fast connection
    changes take effect"), so an event routed sooner may go to the destinations of before."""
    await asyncio.sleep(float(FAST_PIPELINE_ENV["FNBOX_DELIVERY__ROUTING_CACHE_SECONDS"]) + 0.05)


def webhook_url(base: str, instance: resources_pb2.Instance) -> str:
    return f"{base}/v1/sources/{instance.id}"


async def post(
    session: aiohttp.ClientSession, url: str, body: object
) -> tuple[int, dict[str, object], float]:
    """POST one webhook; (status, JSON answer, seconds until the answer)."""
    started = time.perf_counter()
    async with session.post(
        url, data=orjson.dumps(body), headers={"content-type": "application/json"}
    ) as response:
        answer = await response.json(content_type=None)
        return response.status, answer, time.perf_counter() - started


def track(i: int, *, user: str = "u") -> dict[str, object]:
    return {"event": "Order Completed", "userId": f"{user}{i}", "properties": {"n": i}}


async def post_many(
    url: str | Callable[[], str],
    bodies: list[object],
    *,
    concurrency: int = 32,
    acked: list[str] | None = None,
    tries: int = 1,
) -> tuple[list[str], list[float], int]:
    """POST every body (at most ``concurrency`` at once): (acknowledged ids, ack latencies,
    attempts that were not acknowledged: refused or cut off). ``acked`` fills as answers
    arrive; ``url`` may be a function (asked per attempt: replicas, like a load balancer);
    a body is tried up to ``tries`` times."""
    import asyncio

    acked = [] if acked is None else acked
    latencies: list[float] = []
    refused = 0
    queue: asyncio.Queue[object] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    timeout = aiohttp.ClientTimeout(total=30)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal refused
        while not queue.empty():
            body = queue.get_nowait()
            for _ in range(tries):
                try:
                    target = url if isinstance(url, str) else url()
                    status, answer, took = await post(session, target, body)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    status, answer, took = 0, {}, 0.0
                if status == 202:
                    acked.append(str(answer["id"]))
                    latencies.append(took)
                    break
                refused += 1

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return acked, latencies, refused


async def cli(system: object, *args: str) -> Any:
    """Run ``fnbox --output json ARGS`` against ``system``; the parsed JSON output."""
    import asyncio
    import sys

    from tests.e2e.system import REPO, System

    assert isinstance(system, System)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fnbox.cli",
        "--target",
        system.target,
        "--token",
        system.token,
        "--output",
        "json",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return orjson.loads(out) if out.strip() else None
