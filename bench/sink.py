"""The e2e HTTP sink: counts every request it receives and answers 200 at little CPU cost.

Run as ``python -m bench.sink``; prints ``port N``. ``GET /count`` answers the number of other
requests seen so far. A minimal HTTP/1.1 parser (Content-Length bodies, keep-alive) on a raw
asyncio protocol, so the sink takes as little of the shared CPU as possible.
"""

from __future__ import annotations

import asyncio
import sys

_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def next_message(buffer: bytes) -> tuple[str, bytes] | None:
    """The head (latin-1, without its blank line) of the first whole HTTP/1.1 message in
    ``buffer`` (Content-Length bodies only, the body skipped) and what follows the message;
    None until all of it has arrived."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buffer[:head_end].decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    end = head_end + 4 + length
    return None if len(buffer) < end else (head, buffer[end:])


class SinkProtocol(asyncio.Protocol):
    """One connection; requests may arrive pipelined and split across reads."""

    received = 0

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        replies: list[bytes] = []
        while (message := next_message(self._buffer)) is not None:
            head, self._buffer = message
            if head.startswith("GET /count"):
                body = str(SinkProtocol.received).encode()
                length_line = b"content-length: %d\r\n\r\n" % len(body)
                replies.append(b"HTTP/1.1 200 OK\r\n" + length_line + body)
            else:
                SinkProtocol.received += 1
                replies.append(_OK)
        if replies and self._transport is not None:
            self._transport.write(b"".join(replies))


async def serve(port: int) -> None:
    """Serve on 127.0.0.1 until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"port {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    try:
        asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
