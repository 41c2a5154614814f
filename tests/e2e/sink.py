"""A real HTTP sink on 127.0.0.1: records what destinations post, answers as scripted."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass
class Route:
    """How one path answers: ``failures`` statuses first (one per request), then 200;
    ``hang`` makes every request wait until the sink stops."""

    failures: list[int] = field(default_factory=list)
    hang: bool = False
    received: list[dict[str, object]] = field(default_factory=list)
    attempts: int = 0
    # The ``traceparent`` header of each request (empty when it had none).
    traceparents: list[str] = field(default_factory=list)
    # Requests hanging right now (held until the sink stops).
    hanging: int = 0


class Sink:
    """``async with Sink() as sink``; ``sink.url(path)`` is where a destination posts."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.port = 0

    def route(self, path: str) -> Route:
        return self.routes.setdefault(path, Route())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def received(self, path: str) -> list[dict[str, object]]:
        return self.route(path).received

    def message_ids(self, path: str) -> Counter[str]:
        """How many times each messageId arrived (>1: a duplicate delivery)."""
        return Counter(str(e.get("messageId")) for e in self.route(path).received)

    async def __aenter__(self) -> Sink:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/{path}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        route = self.route(request.match_info["path"])
        route.attempts += 1
        route.traceparents.append(request.headers.get("traceparent", ""))
        body = await request.read()
        if route.hang:
            route.hanging += 1
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._release.wait()
            finally:
                route.hanging -= 1
            return web.Response(status=503)
        if route.failures:
            return web.Response(status=route.failures.pop(0))
        value = orjson.loads(body)
        for event in value if isinstance(value, list) else [value]:
            route.received.append(event)
        return web.json_response({"ok": True})
