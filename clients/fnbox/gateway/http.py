"""The webhook HTTP endpoint: validate, authenticate, store durably on the bus, answer 202.

Response codes: 202 stored (body ``{"id": ...}``); 400 malformed JSON or form body;
401 authentication failed; 404 unknown, disabled or non-source instance; 405 not POST;
413 body over the limit; 415 content type other than JSON or form-encoded; 429 overloaded
(too many webhooks being stored, or the instance's backlog is full); 503 the bus or the
control service is unavailable. Nothing is acknowledged (2xx) before it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from fnbox.bus import Bus
from fnbox.delivery import headers as h
from fnbox.gateway import auth
from fnbox.gateway.envelope import webhook_headers
from fnbox.gateway.instances import InstanceCache
from fnbox.gateway.settings import GatewaySettings
from fnbox.telemetry import messaging
from fnbox.telemetry.http import observe_requests
from fnbox.telemetry.prometheus import handle_metrics

__all__ = ["GROUP", "WebhookEndpoint"]

log = logging.getLogger(__name__)

GROUP = "gateway"
_ACCEPTED_TYPES = ("application/json", "application/x-www-form-urlencoded")
_BACKLOG_CHECK_SECONDS = 1.0


class WebhookEndpoint:
    """``POST /v1/sources/{instance}``; build the aiohttp app with :meth:`app`."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        bus: Bus,
        instances: InstanceCache,
        on_topic: Callable[[str], None] = lambda topic: None,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._instances = instances
        self._on_topic = on_topic
        self._in_flight = 0
        self._backlog: dict[str, tuple[float, int]] = {}
        self._backlog_checks: dict[str, asyncio.Task[None]] = {}
        self.accepted = 0

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=self._settings.max_body_bytes, middlewares=[observe_requests]
        )
        app.router.add_route("*", "/v1/sources/{instance}", self.handle)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/metrics", handle_metrics)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "SERVING"})

    async def handle(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return _error(405, "only POST is accepted", headers={"Allow": "POST"})
        if request.content_type not in _ACCEPTED_TYPES:
            return _error(415, "Content-Type must be application/json or form-urlencoded")
        length = request.content_length
        if length is not None and length > self._settings.max_body_bytes:
            return _error(413, f"body over {self._settings.max_body_bytes} bytes")
        if self._in_flight >= self._settings.max_in_flight:
            return _error(429, "too many webhooks in flight", headers={"Retry-After": "1"})
        self._in_flight += 1
        try:
            return await self._accept(request)
        finally:
            self._in_flight -= 1

    async def _accept(self, request: web.Request) -> web.Response:
        key = request.match_info["instance"]
        try:
            instance = await self._instances.lookup(key)
        except Exception as exc:
            log.warning("instance lookup of %s failed: %s", key, exc)
            return _error(503, "the control service is unavailable", headers={"Retry-After": "2"})
        if instance is None or not instance.is_source or not instance.enabled:
            return _error(404, f"no enabled source instance {key!r}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body over {self._settings.max_body_bytes} bytes")
        if not auth.verify(instance.auth, request.headers, body):
            return _error(401, "webhook authentication failed")
        problem = _body_problem(request.content_type, body)
        if problem:
            return _error(400, problem)
        topic = h.topic(h.WEBHOOKS, instance.name)
        if self._backlog_full(topic):
            return _error(429, "the source's backlog is full", headers={"Retry-After": "5"})
        webhook_id = _new_id()
        headers = webhook_headers(
            instance=instance.name,
            webhook_id=webhook_id,
            method=request.method,
            url=str(request.url),
            request_headers=_flat_headers(request),
            received_at=h.rfc3339(),
        )
        try:
            await messaging.publish(self._bus, topic, body, headers, dedup_id=webhook_id)
        except Exception as exc:
            log.warning("storing a webhook on %s failed: %s", topic, exc)
            return _error(503, "the event bus is unavailable", headers={"Retry-After": "2"})
        self.accepted += 1
        self._on_topic(topic)
        return web.Response(
            body=b'{"id":"%s"}' % webhook_id.encode(), status=202, content_type="application/json"
        )

    def _backlog_full(self, topic: str) -> bool:
        """From a cached count refreshed in the background (no bus call on the hot path)."""
        checked, count = self._backlog.get(topic, (0.0, 0))
        if time.monotonic() - checked > _BACKLOG_CHECK_SECONDS:
            task = self._backlog_checks.get(topic)
            if task is None or task.done():
                self._backlog_checks[topic] = asyncio.create_task(self._check_backlog(topic))
        return count >= self._settings.max_backlog

    async def _check_backlog(self, topic: str) -> None:
        try:
            count = await self._bus.pending(topic, GROUP)
        except Exception:
            count = self._backlog.get(topic, (0.0, 0))[1]
        self._backlog[topic] = (time.monotonic(), count)


_random = bytearray()
os.register_at_fork(after_in_child=_random.clear)  # a forked child never reuses the parent's


def _new_id() -> str:
    """A random (version 4) UUID as 32 hex digits, like ``uuid.uuid4().hex`` (from a buffer
    of OS randomness filled for many ids at once)."""
    if not _random:
        _random.extend(os.urandom(16 * 256))
    raw = _random[-16:]
    del _random[-16:]
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


def _flat_headers(request: web.Request) -> dict[str, str]:
    """Header name → value; a repeated header's values joined by ", " (as fetch does)."""
    flat: dict[str, str] = {}
    for key, value in request.headers.items():
        name = str(key)
        flat[name] = f"{flat[name]}, {value}" if name in flat else value
    return flat


def _body_problem(content_type: str, body: bytes) -> str:
    if content_type == "application/json":
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return f"the body is not valid JSON: {exc}"
        return ""
    try:
        parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return "the body is not valid form-urlencoded data"
    return ""


def _error(status: int, message: str, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
