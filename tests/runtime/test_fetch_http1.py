"""fetch over plain http: (runtime/h1.js): response framings, keep-alive reuse, broken answers."""

# ruff: noqa: E501  (embedded JavaScript reads better unwrapped)

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.runtime.conftest import Runtime

# A script answers one request: it gets the request's bytes and returns the bytes to send and
# whether to close the connection afterwards.
Script = Callable[[bytes], tuple[bytes, bool]]


class RawServer:
    """A TCP server on 127.0.0.1 that reads each request's head (and content-length body) and
    answers with `script`; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                reply, close = self.script(head)
                conn.sendall(reply)
                if close:
                    return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def make(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


ALLOW = ["127.0.0.1/32"]


def test_chunked_body_and_keep_alive_reuse(
    rt: Runtime, serve: Callable[[Script], RawServer]
) -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/plain\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n"
    server = serve(lambda head: (chunked, False))
    body = f"""
    for (let i = 0; i < 3; i++) {{
      const r = await fetch('{server.url}/a', {{method: 'POST', body: 'x'.repeat(i)}});
      console.log(r.status, r.headers.get('content-type'), await r.text());
    }}
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["outcome"] == "OK", r
    assert r["logs"] == ["200 text/plain hello, world"] * 3
    assert server.connections == 1  # (undici's Agent opened 2 here)


def test_body_until_close_and_no_reuse(rt: Runtime, serve: Callable[[Script], RawServer]) -> None:
    server = serve(lambda head: (b"HTTP/1.1 200 OK\r\n\r\nread until the end", True))
    body = f"""
    for (let i = 0; i < 2; i++) console.log(await (await fetch('{server.url}/')).text());
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["logs"] == ["read until the end"] * 2
    assert server.connections == 2


def test_connection_close_and_short_keep_alive_hint_are_honoured(
    rt: Runtime, serve: Callable[[Script], RawServer]
) -> None:
    replies = {
        b"/close": b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        b"/hint": b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: 2\r\n\r\nok",
    }
    server = serve(lambda head: (replies[head.split(b" ")[1]], False))
    body = f"""
    for (const p of ['/close', '/close', '/hint', '/hint']) console.log(await (await fetch('{server.url}' + p)).text());
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["logs"] == ["ok"] * 4
    assert server.connections == 4


def test_idle_connection_closed_by_the_server_is_not_reused(
    rt: Runtime, serve: Callable[[Script], RawServer]
) -> None:
    # keep-alive answer, then the server closes the idle connection
    server = serve(lambda head: (b"HTTP/1.1 204 No Content\r\n\r\n", True))
    body = f"""
    for (let i = 0; i < 3; i++) {{
      console.log((await fetch('{server.url}/', {{method: 'POST', body: 'x'}})).status);
      await new Promise((r) => setTimeout(r, 50));
    }}
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["outcome"] == "OK", r
    assert r["logs"] == ["204"] * 3
    assert server.connections == 3


@pytest.mark.parametrize(
    ("reply", "message", "cause"),
    [
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            "terminated",
            "SocketError UND_ERR_SOCKET other side closed",
        ),
        (b"", "fetch failed", "SocketError UND_ERR_SOCKET other side closed"),
        (b"HTTX/1.1 200 OK\r\n\r\n", "fetch failed", "HTTPParserError"),
        (b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n", "fetch failed", "HTTPParserError"),
        # undici: ResponseContentLengthMismatchError; h1.js: HTTPParserError
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            "fetch failed",
            "",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "terminated",
            "HTTPParserError",
        ),
        (
            b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 20000 + b"\r\n\r\n",
            "fetch failed",
            "HeadersOverflowError UND_ERR_HEADERS_OVERFLOW",
        ),
    ],
)
def test_broken_answers_fail_the_fetch(
    rt: Runtime, serve: Callable[[Script], RawServer], reply: bytes, message: str, cause: str
) -> None:
    server = serve(lambda head: (reply, True))
    body = f"""
    try {{ const r = await fetch('{server.url}/'); console.log('GOT', r.status, await r.text()) }}
    catch (e) {{ console.log([e instanceof TypeError, e.message, [e.cause.name, e.cause.code, e.cause.message].filter(Boolean).join(' ')].join('|')) }}
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["outcome"] == "OK", r
    ok, got_message, got_cause = r["logs"][0].split("|")
    assert (ok, got_message) == ("true", message), r["logs"]
    assert got_cause.startswith(cause), r["logs"]


def test_interim_answers_are_skipped(rt: Runtime, serve: Callable[[Script], RawServer]) -> None:
    server = serve(
        lambda head: (
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone",
            False,
        )
    )
    r = rt.run(f"console.log(await (await fetch('{server.url}/')).text())", egress_allow=ALLOW)
    assert r["logs"] == ["done"]


def test_request_headers_are_checked_as_undici_checks_them(
    rt: Runtime, serve: Callable[[Script], RawServer]
) -> None:
    heads: list[bytes] = []

    def answer(head: bytes) -> tuple[bytes, bool]:
        heads.append(head)
        return b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", False

    server = serve(answer)
    body = f"""
    const tries = [
      {{'connection': 'close'}}, {{'host': 'other.example'}}, {{'content-length': '2'}},
      {{'content-length': '3'}}, {{'transfer-encoding': 'chunked'}}, {{'keep-alive': 'timeout=5'}},
      {{'upgrade': 'websocket'}}, {{'expect': '100-continue'}}, {{'connection': 'a b'}},
    ];
    for (const headers of tries) {{
      try {{ console.log((await fetch('{server.url}/', {{method: 'POST', body: 'ab', headers}})).status) }}
      catch (e) {{ console.log(e.message, e.cause.code) }}
    }}
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["logs"] == [
        "200",
        "200",
        "200",
        "fetch failed UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
        "fetch failed UND_ERR_INVALID_ARG",
        "fetch failed UND_ERR_INVALID_ARG",
        "fetch failed UND_ERR_INVALID_ARG",
        "fetch failed UND_ERR_NOT_SUPPORTED",
        "fetch failed UND_ERR_INVALID_ARG",
    ], r
    lines = [[line.lower() for line in h.split(b"\r\n")[1:]] for h in heads]
    assert [x for x in lines[0] if x.startswith(b"connection")] == [b"connection: close"]
    assert [x for x in lines[1] if x.startswith(b"host")] == [b"host: other.example"]
    assert [x for x in lines[2] if x.startswith(b"content-length")] == [b"content-length: 2"]
    assert len(heads) == 3
    # `connection: close` ended the first connection (undici's Agent opened 4 here)
    assert server.connections == 2


def test_connection_idle_for_a_while_is_reused_after_a_check(
    rt: Runtime, serve: Callable[[Script], RawServer]
) -> None:
    server = serve(lambda head: (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", False))
    closing = serve(lambda head: (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", True))
    body = f"""
    for (const url of ['{server.url}', '{closing.url}']) {{
      console.log(await (await fetch(url)).text());
      await new Promise((r) => setTimeout(r, 1100));
      console.log(await (await fetch(url, {{method: 'POST', body: 'x'}})).text());
    }}
    """
    r = rt.run(body, egress_allow=ALLOW)
    assert r["logs"] == ["ok"] * 4, r
    assert (server.connections, closing.connections) == (1, 2)
