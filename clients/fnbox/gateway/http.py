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
import re
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import parse_qsl

import orjson
from aiohttp import HttpVersion10, HttpVersion11, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from fnbox.bus import Bus
from fnbox.delivery import headers as h
from fnbox.gateway import auth
from fnbox.gateway.envelope import webhook_headers
from fnbox.gateway.instances import InstanceCache
from fnbox.gateway.settings import GatewaySettings
from fnbox.telemetry import messaging
from fnbox.telemetry.http import observe
from fnbox.telemetry.prometheus import handle_metrics

__all__ = ["GROUP", "WebhookEndpoint"]

log = logging.getLogger(__name__)

GROUP = "gateway"
_ACCEPTED_TYPES = ("application/json", "application/x-www-form-urlencoded")
_BACKLOG_CHECK_SECONDS = 1.0
_SOURCES = "/v1/sources/"
_SOURCE_ROUTE = _SOURCES + "{instance}"
_INSTANCE = re.compile(r"[^{}/]+")  # what aiohttp's router matched for ``{instance}``
_GET = frozenset({"GET", "HEAD"})


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
        self._topics: dict[str, str] = {}  # instance name → its webhooks topic
        self.accepted = 0

    def server(self) -> web.Server:
        """The low-level aiohttp server of the three routes (run it with ``web.ServerRunner``).

        No ``web.Application``: its router, middleware chain and match info cost about as much
        as the webhook's own handling. The routing here answers as aiohttp's did (404, 405 with
        ``Allow``, ``Expect: 100-continue``); the body limit is the request's ``read()``'s.
        """
        loop = asyncio.get_running_loop()
        max_size = self._settings.max_body_bytes

        def request(
            message: RawRequestMessage,
            payload: StreamReader,
            protocol: RequestHandler,
            writer: AbstractStreamWriter,
            task: asyncio.Task[None],
        ) -> web.Request:
            return web.Request(
                message, payload, protocol, writer, task, loop, client_max_size=max_size
            )

        return web.Server(self._route, request_factory=request, access_log=None)

    async def _route(self, base: web.BaseRequest) -> web.StreamResponse:
        request = cast(web.Request, base)  # made by server()'s request factory
        if request.headers.get("Expect"):
            await _expect(request)
        path = request.rel_url.path_safe
        if path.startswith(_SOURCES):
            instance = path[len(_SOURCES) :]
            if _INSTANCE.fullmatch(instance):
                return await observe(request, self.handle, _SOURCE_ROUTE, _unquote(instance))
        elif path == "/healthz" or path == "/metrics":
            if request.method not in _GET:
                raise web.HTTPMethodNotAllowed(request.method, _GET)
            return await (_health(request) if path == "/healthz" else handle_metrics(request))
        return await observe(request, _not_found, request.path, "")

    async def handle(self, request: web.Request, instance: str) -> web.StreamResponse:
        """``POST /v1/sources/{instance}``."""
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
            return await self._accept(request, instance)
        finally:
            self._in_flight -= 1

    async def _accept(self, request: web.Request, key: str) -> web.StreamResponse:
        try:
            instance = await self._instances.lookup(key)
        except Exception as exc:
            log.warning("instance lookup of %s failed: %s", key, exc)
            return _error(503, "the control service is unavailable", headers={"Retry-After": "2"})
        if instance is None or not instance.is_source or not instance.enabled:
            return _error(404, f"no enabled source instance {key!r}")
        try:
            body = await _read(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body over {self._settings.max_body_bytes} bytes")
        if not auth.verify(instance.auth, request.headers, body):
            return _error(401, "webhook authentication failed")
        problem = _body_problem(request.content_type, body)
        if problem:
            return _error(400, problem)
        topic = self._topics.get(instance.name)
        if topic is None:
            topic = self._topics[instance.name] = h.topic(h.WEBHOOKS, instance.name)
        if self._backlog_full(topic):
            return _error(429, "the source's backlog is full", headers={"Retry-After": "5"})
        webhook_id = _new_id()
        headers = webhook_headers(
            instance=instance.name,
            webhook_id=webhook_id,
            method=request.method,
            url=_url(request),
            request_headers=_flat_headers(request),
            received_at=h.rfc3339(),
        )
        # No dedup id: nothing publishes this webhook again under its id (a failed publish is
        # answered 503 and the sender's retry gets a new id), and on SQLite each one cost a
        # dedup row written, looked up and compacted.
        try:
            await messaging.publish(self._bus, topic, body, headers)
        except Exception as exc:
            log.warning("storing a webhook on %s failed: %s", topic, exc)
            return _error(503, "the event bus is unavailable", headers={"Retry-After": "2"})
        self.accepted += 1
        self._on_topic(topic)
        return _Accepted(webhook_id)

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


class _Accepted(web.StreamResponse):
    """``202`` ``{"id": ...}``: the bytes ``web.Response(body=..., status=202,
    content_type="application/json")`` sends, header for header, from a prebuilt header block
    in one write (no header multidict, serialisation or length bookkeeping per webhook)."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(status=202)
        self._answer = b'{"id":"%s"}' % webhook_id.encode()

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:
            return None
        body = self._answer
        version = request.version
        keep_alive = self._keep_alive = request.keep_alive
        connection = b""
        if keep_alive:
            if version == HttpVersion10:
                connection = b"Connection: keep-alive\r\n"
        elif version == HttpVersion11:
            connection = b"Connection: close\r\n"
        writer = request.writer
        await writer.write_eof(
            b"HTTP/%d.%d 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d"
            b"\r\nDate: %s\r\nServer: %s\r\n%s\r\n%s"
            % (
                version.major,
                version.minor,
                len(body),
                rfc822_formatted_time().encode(),
                _SERVER,
                connection,
                body,
            )
        )
        self._eof_sent = True
        self._body_length = len(body)
        return writer


_SERVER = SERVER_SOFTWARE.encode()
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


async def _read(request: web.Request) -> bytes:
    """The body, as ``request.read()`` gives it (413 over the request's limit): taken at once
    when it has all arrived with the head (a webhook's usual case), without read()'s loop."""
    payload = request.content
    if not payload.is_eof():
        return await request.read()
    body = payload.read_nowait()
    limit = request.client_max_size
    if limit and len(body) > limit:  # 0: no limit, as for read()
        raise web.HTTPRequestEntityTooLarge(limit, len(body))
    return body


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "SERVING"})


async def _not_found(request: web.Request, instance: str) -> web.Response:
    raise web.HTTPNotFound()


async def _expect(request: web.Request) -> None:
    """aiohttp's default ``Expect`` handling (its router's, before any middleware): ``100
    Continue`` for HTTP/1.1 ``100-continue``, 417 for anything else."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11:
        if expect.lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the answer's own output starts after it
        else:
            raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
    await request.writer.drain()


def _unquote(value: str) -> str:
    """A path segment as aiohttp's router gives it (its ``path_safe`` keeps %2F and %25)."""
    if "%" not in value:
        return value
    return value.replace("%2F", "/").replace("%25", "%")


_urls: dict[tuple[str, str, str], str] = {}  # (scheme, host, raw path) → str(request.url)
_URLS_KEPT = 256


def _url(request: web.Request) -> str:
    """``str(request.url)``, remembered for the few URLs webhooks arrive on (building it
    takes yarl a URL build and a join per request)."""
    key = (request.scheme, request.host, request.raw_path)
    url = _urls.get(key)
    if url is None:
        if len(_urls) >= _URLS_KEPT:
            _urls.clear()
        url = _urls[key] = str(request.url)
    return url


def _flat_headers(request: web.Request) -> dict[str, str]:
    """Header name → value; a repeated header's values joined by ", " (as fetch does)."""
    headers = request.headers
    flat = {str(key): value for key, value in headers.items()}
    if len(flat) == len(headers):
        return flat  # no name repeated
    flat = {}
    for key, value in headers.items():
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
