"""fetch: requests recorded, egress policy (loopback listeners only), proxy, network off."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler, ThreadingTCPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.runtime.conftest import NODE, Runtime


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


def test_response_url_and_headers_match_the_host_fetch(rt: Runtime, echo: str) -> None:
    """The Response a function gets (its headers are built only when first read) shows the url,
    header list, repeated headers and clone that Node's own fetch gives for the same URLs."""
    urls = [f"{echo}/a", f"{echo}/b#", f"{echo}/c?q=1#frag"]
    show = "(r) => JSON.stringify([r.status, r.url, [...r.headers].filter(([k]) => k !== 'date'), r.headers.get('set-cookie'), r.headers.getSetCookie(), [...r.clone().headers].length])"
    script = f"(async () => {{ const show = {show}; for (const u of {json.dumps(urls)}) console.log(show(await fetch(u))) }})()"
    host = subprocess.run(
        [NODE, "-e", script],
        check=True,
        timeout=30,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    expected = host.stdout.decode().splitlines()
    r = rt.run(
        f"const show = {show}; for (const u of {json.dumps(urls)}) console.log(show(await fetch(u)))",
        egress_allow=["127.0.0.1/32"],
    )
    assert r["outcome"] == "OK", r.get("error")
    assert r["logs"] == expected
    assert [json.loads(line)[1] for line in expected] == [f"{echo}/a", f"{echo}/b", f"{echo}/c?q=1"]


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


# --- the direct-dispatcher fetch path (runtime/hostfetch.js): what fetch adds, as user code sees it

TEXT = "héllo, wörld " * 200  # what every encoded route decodes to
CAP = 16 * 1024 * 1024  # hostfetch.js MAX_RESPONSE_BYTES
TOO_LARGE = f"response body larger than {CAP} bytes"


def node_compress(kind: str, data: bytes) -> bytes:
    """`data` compressed by Node's zlib (Python has no brotli/zstd encoder here)."""
    script = f"process.stdout.write(require('node:zlib').{kind}CompressSync(require('node:fs').readFileSync(0)))"
    return subprocess.run([NODE, "-e", script], input=data, capture_output=True, check=True).stdout


def bad_port_listener() -> socket.socket:
    """A listener on a free port from fetch's bad-port list, to show nothing connects to it."""
    for port in (6666, 6665, 6667, 6668, 6669, 6679, 6697, 10080, 6000, 6566, 4190, 5060, 5061):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(8)
        sock.settimeout(0)
        return sock
    pytest.skip("no bad port free to listen on")


class Recorder(BaseHTTPRequestHandler):
    """Records every request it gets (method, path, body, header pairs) and serves test routes."""

    log: list[dict[str, Any]]
    bodies: dict[str, tuple[str, bytes]]

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("latin1") if length else ""
        pairs = [(k.lower(), v) for k, v in self.headers.items()]
        self.log.append({"method": self.command, "path": self.path, "body": body, "headers": pairs})
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        if url.path == "/r":
            self.send_response(int(query.get("status", "302")))
            # as UTF-8 bytes on the wire, as servers send non-ASCII locations
            self.send_header("location", query["to"].encode().decode("latin1"))
            self.send_header("content-length", "0")
            self.end_headers()
        elif url.path == "/rr":  # one Location header per `to`
            self.send_response(302)
            for _, to in parse_qsl(url.query):
                self.send_header("location", to)
            self.send_header("content-length", "0")
            self.end_headers()
        elif url.path.startswith("/hops/"):
            left = int(url.path.rsplit("/", 1)[1])
            if left:
                self.send_response(302)
                self.send_header("location", f"/hops/{left - 1}")
                self.send_header("content-length", "0")
                self.end_headers()
            else:
                self._send(200, b"done")
        elif url.path.startswith("/enc/"):
            coding, data = self.bodies[url.path.removeprefix("/enc/")]
            self._send(200, data, coding)
        elif url.path == "/raw-over-cap":
            self.send_response(200)
            self.send_header("content-length", str(CAP + 1))
            self.end_headers()
            try:
                chunk = b"a" * 65536
                for _ in range(CAP // len(chunk)):
                    self.wfile.write(chunk)
                self.wfile.write(b"a")
            except OSError:
                pass  # the client hung up at the cap, as it should
        else:
            self._send(200, json.dumps(self.log[-1]).encode(), content_type="application/json")

    def _send(
        self, status: int, data: bytes, coding: str = "", content_type: str = "text/plain"
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        if coding:
            self.send_header("content-encoding", coding)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _reply

    def log_message(self, format: str, *args: object) -> None:
        pass


class Site:
    def __init__(self, host: str, bodies: dict[str, tuple[str, bytes]]) -> None:
        self.log: list[dict[str, Any]] = []
        handler = type("Handler", (Recorder,), {"log": self.log, "bodies": bodies})
        self.server = ThreadingHTTPServer((host, 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://{host}:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def encoded() -> dict[str, tuple[str, bytes]]:
    text = TEXT.encode()
    zlib_deflate = zlib.compressobj(wbits=-15)
    raw_deflate = zlib_deflate.compress(text) + zlib_deflate.flush()
    return {
        "gzip": ("gzip", gzip.compress(text)),
        "x-gzip": ("x-gzip", gzip.compress(text)),
        "deflate": ("deflate", zlib.compress(text)),
        "deflate-raw": ("deflate", raw_deflate),
        "br": ("br", node_compress("brotli", text)),
        "zstd": ("zstd", node_compress("zstd", text)),
        # codings listed in the order applied: deflate first, then gzip
        "deflate-gzip": ("deflate, gzip", gzip.compress(zlib.compress(text))),
        "unknown": ("snappy", b"left as is"),
        "corrupt": ("gzip", b"\x1f\x8b\x08\x00not gzip at all"),
        "bomb": ("gzip", gzip.compress(b"\0" * (CAP + 1), 9)),
        "at-cap": ("gzip", gzip.compress(b"b" * CAP, 9)),
        "br-bomb": ("br", node_compress("brotli", b"\0" * (CAP + 1))),
    }


@pytest.fixture()
def site(encoded: dict[str, tuple[str, bytes]]) -> Iterator[Site]:
    s = Site("127.0.0.1", encoded)
    yield s
    s.close()


@pytest.fixture()
def other(encoded: dict[str, tuple[str, bytes]]) -> Iterator[Site]:
    """A second server on 127.0.0.1, another port: another origin."""
    s = Site("127.0.0.1", encoded)
    yield s
    s.close()


LOCAL: dict[str, Any] = {"egress_allow": ["127.0.0.1/32"]}


def run_ok(rt: Runtime, body: str) -> list[str]:
    r = rt.run(body, **LOCAL)
    assert r["outcome"] == "OK", r.get("error")
    logs: list[str] = r["logs"]
    return logs


FAIL = "console.log('FAIL', e.constructor.name, e.message, e.cause ? e.cause.message : '-', e.cause && e.cause.code ? e.cause.code : '-')"


@pytest.mark.parametrize(
    "route", ["gzip", "x-gzip", "deflate", "deflate-raw", "br", "zstd", "deflate-gzip"]
)
def test_encoded_bodies_are_decoded(
    rt: Runtime, site: Site, encoded: dict[str, tuple[str, bytes]], route: str
) -> None:
    coding, data = encoded[route]
    body = f"""
    const r = await fetch('{site.url}/enc/{route}');
    const t = await r.text();
    console.log(r.status, r.headers.get('content-encoding'), r.headers.get('content-length'), t.length, t === {json.dumps(TEXT)});
    """
    assert run_ok(rt, body) == [f"200 {coding} {len(data)} {len(TEXT)} true"]
    assert [q["path"] for q in site.log] == [f"/enc/{route}"]


def test_unknown_coding_is_left_as_is_and_corrupt_gzip_fails(rt: Runtime, site: Site) -> None:
    body = f"""
    const r = await fetch('{site.url}/enc/unknown');
    console.log(r.headers.get('content-encoding'), await r.text());
    try {{ const c = await fetch('{site.url}/enc/corrupt'); await c.text(); console.log('READ') }} catch (e) {{ {FAIL} }}
    """
    assert run_ok(rt, body) == [
        "snappy left as is",
        "FAIL TypeError terminated invalid stored block lengths Z_DATA_ERROR",
    ]


@pytest.mark.parametrize("route", ["bomb", "br-bomb"])
def test_compression_bomb_is_cut_at_the_cap(
    rt: Runtime, site: Site, encoded: dict[str, tuple[str, bytes]], route: str
) -> None:
    assert len(encoded[route][1]) < 64 * 1024  # small on the wire, over 16 MB decoded
    body = f"try {{ const r = await fetch('{site.url}/enc/{route}'); console.log('GOT', (await r.arrayBuffer()).byteLength) }} catch (e) {{ {FAIL} }}"
    r = rt.run(body, **LOCAL)
    assert r["outcome"] == "OK", r.get("error")
    assert r["logs"] == [f"FAIL TypeError {TOO_LARGE} - -"]
    assert r["requests"][0]["error"] == TOO_LARGE


def test_decoded_body_of_exactly_the_cap_is_delivered(rt: Runtime, site: Site) -> None:
    body = f"const r = await fetch('{site.url}/enc/at-cap'); const b = new Uint8Array(await r.arrayBuffer()); console.log(b.length, b[0], b[b.length - 1])"
    assert run_ok(rt, body) == [f"{CAP} 98 98"]


def test_raw_body_over_the_cap_fails(rt: Runtime, site: Site) -> None:
    body = f"try {{ const r = await fetch('{site.url}/raw-over-cap'); console.log('GOT', (await r.arrayBuffer()).byteLength) }} catch (e) {{ {FAIL} }}"
    assert run_ok(rt, body) == [f"FAIL TypeError {TOO_LARGE} - -"]


def header(req: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in req["headers"] if k == name]


def test_default_request_headers(rt: Runtime, site: Site) -> None:
    body = f"""
    await fetch('{site.url}/plain');
    await fetch('{site.url}/mine', {{headers: {{accept: 'text/csv', 'user-agent': 'me/1', 'accept-encoding': 'br'}}}});
    await fetch('{site.url}/range', {{headers: {{range: 'bytes=0-3'}}}});
    """
    run_ok(rt, body)
    plain, mine, ranged = site.log
    names = sorted(k for k, _ in plain["headers"])
    assert names == sorted(
        [
            "host",
            "connection",
            "accept",
            "accept-language",
            "sec-fetch-mode",
            "user-agent",
            "accept-encoding",
        ]
    )
    assert {k: v for k, v in plain["headers"] if k not in ("host", "connection")} == {
        "accept": "*/*",
        "accept-language": "*",
        "sec-fetch-mode": "cors",
        "user-agent": "node",
        "accept-encoding": "gzip, deflate",
    }
    assert (
        header(mine, "accept"),
        header(mine, "user-agent"),
        header(mine, "accept-encoding"),
    ) == (["text/csv"], ["me/1"], ["br"])
    assert (header(ranged, "range"), header(ranged, "accept-encoding")) == (
        ["bytes=0-3"],
        ["identity"],
    )


def test_default_headers_match_the_host_fetch(site: Site) -> None:
    """The headers Node's own fetch sends to the same server are the ones the sandbox sends."""
    script = f"fetch('{site.url}/host').then((r) => r.text()).then(() => fetch('{site.url}/host', {{method: 'POST'}})).then((r) => r.text())"
    subprocess.run([NODE, "-e", script], check=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    host_get, host_post = site.log
    fresh = Runtime()
    try:
        r = fresh.run(
            f"await (await fetch('{site.url}/sb')).text(); await (await fetch('{site.url}/sb', {{method: 'POST'}})).text()",
            **LOCAL,
        )
    finally:
        fresh.close()
    assert r["outcome"] == "OK", r.get("error")
    sb_get, sb_post = site.log[2:]

    def shape(req: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in req["headers"] if k != "host")

    assert shape(sb_get) == shape(host_get)
    assert shape(sb_post) == shape(host_post)


def test_empty_body_post_and_put_send_content_length_zero(rt: Runtime, site: Site) -> None:
    body = f"""
    await fetch('{site.url}/a', {{method: 'POST'}});
    await fetch('{site.url}/b', {{method: 'PUT', body: ''}});
    await fetch('{site.url}/c', {{method: 'DELETE'}});
    await fetch('{site.url}/d');
    """
    run_ok(rt, body)
    assert [
        (q["method"], header(q, "content-length"), header(q, "transfer-encoding")) for q in site.log
    ] == [
        ("POST", ["0"], []),
        ("PUT", ["0"], []),
        ("DELETE", [], []),
        ("GET", [], []),
    ]


@pytest.mark.parametrize(
    ("status", "method", "then_method", "then_body"),
    [
        (303, "POST", "GET", ""),
        (303, "PUT", "GET", ""),
        (301, "POST", "GET", ""),
        (302, "POST", "GET", ""),
        (302, "PUT", "PUT", "payload"),
        (307, "POST", "POST", "payload"),
        (308, "PUT", "PUT", "payload"),
    ],
)
def test_redirect_method_and_body(
    rt: Runtime, site: Site, status: int, method: str, then_method: str, then_body: str
) -> None:
    body = f"""
    const r = await fetch('{site.url}/r?status={status}&to=/next', {{method: '{method}', body: 'payload', headers: {{'content-type': 'text/x-test', 'x-keep': 'k'}}}});
    console.log(r.status, r.redirected, r.url);
    """
    assert run_ok(rt, body) == [f"200 true {site.url}/next"]
    first, second = site.log
    assert (first["method"], first["body"], header(first, "content-type")) == (
        method,
        "payload",
        ["text/x-test"],
    )
    assert (second["method"], second["path"], second["body"]) == (then_method, "/next", then_body)
    assert header(second, "x-keep") == ["k"]
    if then_method == "GET":
        assert header(second, "content-type") == [] and header(second, "content-length") == []
    else:
        assert header(second, "content-type") == ["text/x-test"]
        assert header(second, "content-length") == ["7"]


def test_credentials_dropped_on_cross_origin_redirect_only(
    rt: Runtime, site: Site, other: Site
) -> None:
    creds = "{authorization: 'Bearer s3cret', cookie: 'sid=1', 'proxy-authorization': 'Basic eA==', 'x-other': 'o'}"
    body = f"""
    await fetch('{site.url}/r?to=/same', {{headers: {creds}}});
    await fetch('{site.url}/r?to={other.url}/cross', {{headers: {creds}}});
    """
    run_ok(rt, body)
    assert [q["path"] for q in site.log] == ["/r?to=/same", "/same", f"/r?to={other.url}/cross"]
    assert [q["path"] for q in other.log] == ["/cross"]
    sent = ["authorization", "cookie", "proxy-authorization", "x-other"]
    for req in (site.log[0], site.log[1], site.log[2]):
        assert [header(req, n) for n in sent] == [
            ["Bearer s3cret"],
            ["sid=1"],
            ["Basic eA=="],
            ["o"],
        ], req["path"]
    cross = other.log[0]
    assert [header(cross, n) for n in sent] == [[], [], [], ["o"]]
    assert header(cross, "host") == [other.url.removeprefix("http://")]


def test_redirect_modes(rt: Runtime, site: Site) -> None:
    body = f"""
    const m = await fetch('{site.url}/r?status=301&to=/elsewhere', {{redirect: 'manual'}});
    console.log(m.status, m.redirected, m.headers.get('location'), m.url);
    try {{ await fetch('{site.url}/r?status=307&to=/elsewhere', {{redirect: 'error'}}); console.log('FOLLOWED') }} catch (e) {{ {FAIL} }}
    """
    assert run_ok(rt, body) == [
        f"301 false /elsewhere {site.url}/r?status=301&to=/elsewhere",
        "FAIL TypeError fetch failed unexpected redirect -",
    ]
    assert [q["path"] for q in site.log] == [
        "/r?status=301&to=/elsewhere",
        "/r?status=307&to=/elsewhere",
    ]


def test_twenty_redirects_are_followed_and_the_21st_is_refused(rt: Runtime, site: Site) -> None:
    body = f"""
    const r = await fetch('{site.url}/hops/20');
    console.log(r.status, r.redirected, r.url, await r.text());
    try {{ await fetch('{site.url}/hops/21'); console.log('FOLLOWED') }} catch (e) {{ {FAIL} }}
    """
    assert run_ok(rt, body) == [
        f"200 true {site.url}/hops/0 done",
        "FAIL TypeError fetch failed redirect count exceeded -",
    ]
    assert [q["path"] for q in site.log] == [f"/hops/{n}" for n in range(20, -1, -1)] + [
        f"/hops/{n}" for n in range(21, 0, -1)
    ]


def test_redirect_to_a_denied_address_is_refused_by_the_egress_guard(
    rt: Runtime, site: Site, encoded: dict[str, tuple[str, bytes]]
) -> None:
    elsewhere = Site("127.0.0.2", encoded)
    try:
        body = f"""
        for (const to of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.1:8080/', '{elsewhere.url}/x', 'http://[::1]:{site.url.rsplit(":", 1)[1]}/x']) {{
          try {{ await fetch('{site.url}/r?to=' + encodeURIComponent(to)); console.log('FOLLOWED') }} catch (e) {{ {FAIL} }}
        }}
        """
        logs = run_ok(rt, body)
        denied = ["169.254.169.254", "10.0.0.1", "127.0.0.2", "[::1] (::1)"]
        assert logs == [
            f"FAIL TypeError fetch failed EGRESS_DENIED: {a} is not an allowed destination EGRESS_DENIED"
            for a in denied
        ]
        assert len(site.log) == 4
        assert elsewhere.log == []
    finally:
        elsewhere.close()


def test_bad_ports_are_refused_on_every_hop(rt: Runtime, site: Site) -> None:
    listener = bad_port_listener()
    port = listener.getsockname()[1]
    try:
        body = f"""
        for (const url of ['http://127.0.0.1:25/', 'http://127.0.0.1:{port}/direct', '{site.url}/r?to=http://127.0.0.1:{port}/hop']) {{
          try {{ await fetch(url); console.log('FETCHED') }} catch (e) {{ {FAIL} }}
        }}
        """
        assert run_ok(rt, body) == ["FAIL TypeError fetch failed bad port -"] * 3
        assert [q["path"] for q in site.log] == [f"/r?to=http://127.0.0.1:{port}/hop"]
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected to the bad port
    finally:
        listener.close()


def test_non_ascii_location_is_followed_as_the_host_fetch_does(rt: Runtime, site: Site) -> None:
    """A raw UTF-8 Location is read as UTF-8 (undici's normalizeBinaryStringToUtf8), not latin1."""
    to = "/caf%C3%A9/%C3%BC"  # the query value: /café/ü
    script = f"fetch('{site.url}/r?to={to}').then((r) => r.text())"
    subprocess.run([NODE, "-e", script], check=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    run_ok(rt, f"const r = await fetch('{site.url}/r?to={to}'); console.log(r.url)")
    paths = [q["path"] for q in site.log]
    assert paths == [f"/r?to={to}", "/caf%C3%A9/%C3%BC"] * 2


def test_several_location_headers_are_followed_as_the_host_fetch_does(
    rt: Runtime, site: Site
) -> None:
    """Several Location values are joined with ', ' (fetch's Headers.get), not one picked."""
    script = f"fetch('{site.url}/rr?to=/a&to=/b').then((r) => r.text())"
    subprocess.run([NODE, "-e", script], check=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    run_ok(rt, f"await (await fetch('{site.url}/rr?to=/a&to=/b')).text()")
    assert [q["path"] for q in site.log] == ["/rr?to=/a&to=/b", "/a,%20/b"] * 2
