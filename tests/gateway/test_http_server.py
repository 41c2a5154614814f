"""The webhook gateway's HTTP server at the wire: routing, ``Expect``, the body limit (also
for chunked bodies), pipelining, and what is stored of an accepted webhook. A real control
service and a real SQLite bus in this process."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from fnbox.bus import Bus
from fnbox.delivery import headers as h
from fnbox.gateway.http import _Accepted
from fnbox.gateway.service import GatewayService
from fnbox.gateway.settings import GatewaySettings
from fnbox.server.app import ControlService
from fnbox.server.settings import GrpcSettings, Settings
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.e2e import pipeline

pytestmark = pytest.mark.timeout(60)

MAX_BODY = 4096


@dataclass
class Gateway:
    service: GatewayService
    bus: Bus
    path: str  # of the source instance's webhook URL
    topic: str

    async def exchange(self, raw: bytes, *, answers: int = 1, head: bool = False) -> list[bytes]:
        """``answers`` HTTP responses (head and body; the head only for ``head``) to ``raw``
        sent on one connection."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.service.port)
        try:
            writer.write(raw)
            return [await _response(reader, head=head) for _ in range(answers)]
        finally:
            writer.close()


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    control = ControlService(Settings(data_dir=tmp_path, grpc=GrpcSettings(listen="127.0.0.1:0")))
    await control.start()
    settings = GatewaySettings(listen="127.0.0.1:0", max_body_bytes=MAX_BODY)
    service, src, plane, bus = await pipeline.gateway_of(control, tmp_path, settings)
    try:
        yield Gateway(service, bus, f"/v1/sources/{src.id}", h.topic(h.WEBHOOKS, src.name))
    finally:
        await service.stop()
        await plane.close()
        await bus.close()
        await control.stop()


def _post(path: str, body: bytes, *, extra: str = "", ctype: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gw.example:8080\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _chunked(path: str, body: bytes, piece: int = 1000) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + piece]), body[i : i + piece])
        for i in range(0, len(body), piece)
    )
    return head + chunks + b"0\r\n\r\n"


async def _response(reader: asyncio.StreamReader, *, head: bool = False) -> bytes:
    start = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if head:
        return start
    length = 0
    for line in start.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    if start.startswith(b"HTTP/1.1 100 "):
        return start
    return start + await asyncio.wait_for(reader.readexactly(length), 10)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _header(response: bytes, name: str) -> str | None:
    head = response.split(b"\r\n\r\n", 1)[0].decode()
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.lower() == name.lower():
            return value.strip()
    return None


def _body(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


async def test_routes(gateway: Gateway) -> None:
    (health,) = await gateway.exchange(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
    assert _status(health) == 200 and orjson.loads(_body(health)) == {"status": "SERVING"}
    (head,) = await gateway.exchange(b"HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\n", head=True)
    assert _status(head) == 200 and _header(head, "Content-Length") == "21"
    for path in ("/healthz", "/metrics"):
        (refused,) = await gateway.exchange(_post(path, b"{}"))
        assert _status(refused) == 405 and _header(refused, "Allow") == "GET,HEAD"
    (metrics,) = await gateway.exchange(b"GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n")
    assert _status(metrics) == 200
    for path in ("/nope", "/v1/sources/", f"{gateway.path}/", f"{gateway.path}/x", "/v1/source"):
        (missing,) = await gateway.exchange(_post(path, b"{}"))
        assert _status(missing) == 404 and _body(missing) == b"404: Not Found", path
    (unknown,) = await gateway.exchange(_post("/v1/sources/in_a%2Fb", b"{}"))
    assert _status(unknown) == 404
    assert orjson.loads(_body(unknown)) == {"error": "no enabled source instance 'in_a/b'"}
    (get,) = await gateway.exchange(f"GET {gateway.path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert _status(get) == 405 and _header(get, "Allow") == "POST"


async def test_expect_100_continue(gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.service.port)
    try:
        body = b'{"event":"E"}'
        writer.write(
            _post(gateway.path, b"", extra="Expect: 100-continue\r\n").replace(
                b"Content-Length: 0", b"Content-Length: %d" % len(body)
            )
        )
        assert await _response(reader) == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the body
        writer.write(body)
        accepted = await _response(reader)
        assert _status(accepted) == 202
    finally:
        writer.close()
    (failed,) = await gateway.exchange(_post(gateway.path, b"{}", extra="Expect: later\r\n"))
    assert _status(failed) == 417


async def test_body_limit_also_for_chunked_bodies(gateway: Gateway) -> None:
    big = b'{"a":"' + b"x" * MAX_BODY + b'"}'
    (declared,) = await gateway.exchange(_post(gateway.path, big))
    assert _status(declared) == 413
    (chunked,) = await gateway.exchange(_chunked(gateway.path, big))
    assert _status(chunked) == 413
    assert orjson.loads(_body(chunked)) == {"error": f"body over {MAX_BODY} bytes"}
    (small,) = await gateway.exchange(_chunked(gateway.path, b'{"a":"' + b"x" * 1500 + b'"}'))
    assert _status(small) == 202
    for body, status in ((big, 413), (b'{"a":"' + b"x" * 1500 + b'"}', 202)):
        # the body still arriving when the gateway reads it
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.service.port)
        raw = _chunked(gateway.path, body)
        writer.write(raw[:300])
        await asyncio.sleep(0.2)
        writer.write(raw[300:])
        assert _status(await _response(reader)) == status
        writer.close()


async def test_pipelined_requests_are_answered_in_order(gateway: Gateway) -> None:
    answers = await gateway.exchange(
        _post(gateway.path, b"{}")
        + f"GET {gateway.path} HTTP/1.1\r\nHost: h\r\n\r\n".encode()
        + b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
        + _post(gateway.path, b"{nope"),
        answers=4,
    )
    assert [_status(answer) for answer in answers] == [202, 405, 200, 400]


async def test_connection_close_and_http_1_0(gateway: Gateway) -> None:
    for raw in (
        _post(gateway.path, b"{}", extra="Connection: close\r\n"),
        _post(gateway.path, b"{}").replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.service.port)
        writer.write(raw)
        assert _status(await _response(reader)) == 202
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the server
        writer.close()


async def test_what_is_stored_of_an_accepted_webhook(gateway: Gateway) -> None:
    body = b'{"event":"Stored"}'
    extra = "X-Repeated: 1\r\nX-Repeated: 2\r\n"
    (accepted,) = await gateway.exchange(_post(f"{gateway.path}?a=1&b=%20", body, extra=extra))
    assert _status(accepted) == 202
    webhook_id = orjson.loads(_body(accepted))["id"]
    (delivery,) = await gateway.bus.consume(gateway.topic, "test", batch=5, wait=5, lease=30)
    message = delivery.message
    assert message.data == body
    assert message.headers[h.WEBHOOK_ID] == webhook_id
    assert message.headers[h.METHOD] == "POST"
    assert message.headers[h.URL] == f"http://gw.example:8080{gateway.path}?a=1&b=%20"
    stored = orjson.loads(message.headers[h.REQUEST_HEADERS])
    assert stored["X-Repeated"] == "1, 2" and stored["Host"] == "gw.example:8080"
    assert stored["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "request_head",
    [
        "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "POST /x HTTP/1.0\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "POST /x HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_the_202_is_what_aiohttp_would_send(request_head: str) -> None:
    """The prebuilt ``202`` answer, byte for byte (but the date) aiohttp's ``web.Response``."""
    webhook_id = "0123456789abcdef0123456789abcdef"

    async def prebuilt(request: web.BaseRequest) -> web.StreamResponse:
        return _Accepted(webhook_id)

    async def aiohttps(request: web.BaseRequest) -> web.StreamResponse:
        body = b'{"id":"%s"}' % webhook_id.encode()
        return web.Response(body=body, status=202, content_type="application/json")

    # the server closes after answering these (read to the end: nothing more may come)
    closes = "close" in request_head or (
        "HTTP/1.0" in request_head and "keep-alive" not in request_head
    )
    answers = []
    for handler in (prebuilt, aiohttps):
        runner = web.ServerRunner(web.Server(handler, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request_head.encode())
            answer = await (asyncio.wait_for(reader.read(), 3) if closes else _response(reader))
            writer.close()
        finally:
            await runner.cleanup()
        answers.append(re.sub(rb"Date: [^\r]+", b"Date: -", answer))
    assert answers[0] == answers[1]
    assert answers[0].startswith(b"HTTP/1.")


async def test_the_webhook_span(gateway: Gateway, spans: InMemorySpanExporter) -> None:
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    traceparent = f"traceparent: 00-{caller_trace}-b7ad6b7169203331-01\r\n"
    (accepted,) = await gateway.exchange(_post(gateway.path, b"{}", extra=traceparent))
    assert _status(accepted) == 202
    (missing,) = await gateway.exchange(_post("/nope", b"{}"))
    assert _status(missing) == 404
    await gateway.bus.close()  # the bus goes away: 503, the platform's fault
    (unavailable,) = await gateway.exchange(_post(gateway.path, b"{}"))
    assert _status(unavailable) == 503
    instance = gateway.path.rsplit("/", 1)[1]
    served = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    webhooks = [
        s
        for s in served
        if s.name == "POST /v1/sources/{instance}"
        and (s.attributes or {}).get("fnbox.instance") == instance
    ]
    ok, failed = webhooks
    assert dict(ok.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/v1/sources/{instance}",
        "url.path": gateway.path,
        "fnbox.instance": instance,
        "http.response.status_code": 202,
    }
    assert ok.parent is None and ok.context is not None
    assert f"{ok.context.trace_id:032x}" != caller_trace  # a trace of its own, linked
    assert [f"{link.context.trace_id:032x}" for link in ok.links] == [caller_trace]
    assert ok.status.status_code is StatusCode.UNSET
    assert (failed.attributes or {})["http.response.status_code"] == 503
    assert failed.status.status_code is StatusCode.ERROR and not failed.links
    (nope,) = [s for s in served if s.name == "POST /nope"]
    assert (nope.attributes or {})["http.route"] == "/nope"
    assert (nope.attributes or {})["http.response.status_code"] == 404
    # A 404 is the caller's: answered, not a fault of ours, and no exception event.
    assert nope.status.status_code is StatusCode.UNSET and not nope.events
