"""fetch: requests recorded, egress policy (loopback listeners only), proxy, network off."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler, ThreadingTCPServer

import pytest

from tests.runtime.conftest import Runtime


class Echo(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("location", self.path.split("=", 1)[1])
            self.end_headers()
            return
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        payload = {
            "method": self.command,
            "path": self.path,
            "body": body,
            "headers": dict(self.headers.items()),
        }
        data = json.dumps(payload).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("set-cookie", "a=1")
        self.send_header("set-cookie", "b=2")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _reply

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(host: str) -> Iterator[str]:
    server = ThreadingHTTPServer((host, 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{host}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    yield from serve("127.0.0.1")


@pytest.fixture(scope="module")
def echo2() -> Iterator[str]:
    yield from serve("127.0.0.2")


def test_fetch_round_trip_and_request_record(rt: Runtime, echo: str) -> None:
    body = f"""
    const r = await fetch('{echo}/p?x=1', {{method: 'post', headers: {{'X-Key': 'k'}}, body: JSON.stringify({{a: 1}})}});
    const j = await r.json();
    console.log(r.status, r.ok, r.headers.get('content-type'), r.headers.getSetCookie().join(';'), r.url.endsWith('/p?x=1'));
    console.log(j.method, j.path, j.body, j.headers['X-Key'] || j.headers['x-key'], j.headers['Content-Type'] || j.headers['content-type']);
    const f = new FormData(); f.append('field', 'v'); f.append('file', new Blob(['data'], {{type: 'text/plain'}}), 'a.txt');
    const m = await (await fetch('{echo}/form', {{method: 'PUT', body: f}})).json();
    console.log(m.body.includes('name="field"\\r\\n\\r\\nv'), m.body.includes('filename="a.txt"'), (m.headers['Content-Type'] || m.headers['content-type']).startsWith('multipart/form-data; boundary='));
    try {{ await r.text() }} catch (e) {{ console.log(e.name) }}
    const s = await fetch('{echo}/stream'); const chunks = [];
    for await (const c of s.body) chunks.push(c);
    console.log(chunks.length, JSON.parse(new TextDecoder().decode(chunks[0])).path, s.bodyUsed)
    """
    r = rt.run(body, egress_allow=["127.0.0.1/32"])
    assert r["outcome"] == "OK", r.get("error")
    assert r["logs"] == [
        "201 true application/json a=1;b=2 true",
        'POST /p?x=1 {"a":1} k text/plain;charset=UTF-8',
        "true true true",
        "TypeError",
        "1 /stream true",
    ]
    reqs = r["requests"]
    assert [(q["method"], q["url"], q["status"], q["error"]) for q in reqs] == [
        ("POST", f"{echo}/p?x=1", 201, ""),
        ("PUT", f"{echo}/form", 201, ""),
        ("GET", f"{echo}/stream", 201, ""),
    ]
    assert all(q["duration_ms"] >= 0 for q in reqs)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://0x7f000001:{port}/",
        "http://2130706433:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::1]:{port}/",
        "http://127.1:{port}/",
    ],
)
def test_loopback_is_denied_in_every_spelling(rt: Runtime, echo: str, url: str) -> None:
    port = echo.rsplit(":", 1)[1]
    body = f"""
    try {{ await fetch('{url.format(port=port)}'); console.log('REACHED') }}
    catch (e) {{ console.log(e instanceof TypeError, e.message, e.cause && e.cause.code, e.cause && e.cause.message) }}
    """
    r = rt.run(body)
    assert r["outcome"] == "OK", r
    ok, rest = r["logs"][0].split(" ", 1)
    assert ok == "true"
    assert rest.startswith("fetch failed EGRESS_DENIED EGRESS_DENIED: ")
    assert "is not an allowed destination" in rest
    assert r["requests"][0]["status"] == 0
    assert "EGRESS_DENIED" in r["requests"][0]["error"]


def test_every_redirect_hop_is_checked(rt: Runtime, echo: str, echo2: str) -> None:
    body = f"""
    const ok = await fetch('{echo2}/redirect?to={echo2}/final');
    console.log(ok.status, ok.redirected, (await ok.json()).path);
    try {{ await fetch('{echo2}/redirect?to={echo}/secret'); console.log('REACHED') }}
    catch (e) {{ console.log(e.cause.code, e.cause.message) }}
    const manual = await fetch('{echo2}/redirect?to={echo}/secret', {{redirect: 'manual'}});
    console.log(manual.status);
    """
    r = rt.run(body, egress_allow=["127.0.0.2/32"])
    assert r["outcome"] == "OK", r
    assert r["logs"] == [
        "201 true /final",
        "EGRESS_DENIED EGRESS_DENIED: 127.0.0.1 is not an allowed destination",
        "302",
    ]


def test_user_dispatcher_option_is_dropped(rt: Runtime, echo: str) -> None:
    body = f"""
    const evil = {{ dispatch() {{ throw new Error('user dispatcher used') }} }};
    try {{ await fetch('{echo}/', {{dispatcher: evil}}); console.log('REACHED') }} catch (e) {{ console.log(e.cause.code) }}
    """
    assert rt.run(body)["logs"] == ["EGRESS_DENIED"]


def test_network_off_rejects_every_fetch(rt: Runtime, echo: str) -> None:
    body = f"try {{ await fetch('{echo}/') }} catch (e) {{ console.log(e.message, e.cause.code) }}"
    r = rt.run(body, network=False, egress_allow=["127.0.0.1/32"])
    assert r["logs"] == ["fetch failed EGRESS_DENIED"]


def test_uncaught_fetch_failure_is_an_error_outcome(rt: Runtime) -> None:
    r = rt.run("await fetch('http://10.0.0.1/')")
    assert r["outcome"] == "ERROR"
    assert (r["error"]["name"], r["error"]["message"]) == ("TypeError", "fetch failed")


def test_abort_signal(rt: Runtime, echo: str) -> None:
    body = f"""
    const c = new AbortController(); c.abort();
    try {{ await fetch('{echo}/', {{signal: c.signal}}) }} catch (e) {{ console.log(e.name) }}
    """
    assert rt.run(body, egress_allow=["127.0.0.1/32"])["logs"] == ["AbortError"]


@pytest.mark.parametrize(
    ("address", "denied"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("::1", True),
        ("::", True),
        ("fd00::1", True),
        ("fe80::1", True),
        ("ff02::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:7f00:1", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::a9fe:a9fe", True),
        ("[::1]", True),
        ("8.8.8.8", False),
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
        ("example.com", False),
    ],
)
def test_address_policy(rt: Runtime, address: str, denied: bool) -> None:
    assert rt.call("policy", addresses=[address])["denied"] == [denied]


def test_address_policy_allow_list(rt: Runtime) -> None:
    reply = rt.call(
        "policy", addresses=["10.1.2.3", "10.2.0.1", "::1"], allow=["10.1.0.0/16", "::1/128"]
    )
    assert reply["denied"] == [False, True, False]


class ConnectProxy(BaseRequestHandler):
    """A CONNECT-only HTTP proxy that records the tunnels it opened."""

    targets: list[str] = []

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        line = head.split(b"\r\n", 1)[0].decode()
        method, target, _ = line.split(" ", 2)
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        self.request.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                dst.close()

        threading.Thread(target=pump, args=(upstream, self.request), daemon=True).start()
        pump(self.request, upstream)


def test_egress_proxy_carries_the_requests(rt: Runtime, echo: str) -> None:
    ThreadingTCPServer.allow_reuse_address = True
    proxy = ThreadingTCPServer(("127.0.0.1", 0), ConnectProxy)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        host = echo.removeprefix("http://").replace("127.0.0.1", "localhost")
        body = f"""
        const r = await fetch('http://{host}/via-proxy'); console.log(r.status, (await r.json()).path);
        try {{ await fetch('{echo}/') }} catch (e) {{ console.log(e.cause.code) }}
        """
        r = rt.run(body, egress_proxy=f"http://127.0.0.1:{proxy.server_address[1]}")
        assert r["outcome"] == "OK", r
        assert r["logs"] == ["201 /via-proxy", "EGRESS_DENIED"]
        assert ConnectProxy.targets == [host]
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_traceparent_is_propagated(rt: Runtime, echo: str) -> None:
    rt.loaded(
        f"async function onTrack() {{ const j = await (await fetch('{echo}/t')).json(); console.log(j.headers.traceparent) }}",
        egress_allow=["127.0.0.1/32"],
    )
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    segs = ['{"type": "track"}', "{}"]
    result = rt.call("invoke", kind="event", segments=segs, trace={"traceparent": tp})["result"]
    assert result["logs"] == [tp]
