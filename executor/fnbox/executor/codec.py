"""Sans-IO frame codec for the worker protocol (see PROTOCOL.md).

Frame: ``u32 BE rest_len | u32 BE header_len | header JSON | body``; ``header["seg"]`` lists
the byte lengths that partition the body into segments. Segments are sliced, never parsed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from fnbox.executor.errors import FrameTooLarge, PayloadTooLarge, ProtocolError

PREFIX = struct.Struct(">I")
HEADERS = struct.Struct(">II")
PREFIX_SIZE = PREFIX.size
# rest_len covers at least the header_len field and a 2-byte header ("{}").
MIN_REST = 4 + 2


@dataclass(slots=True)
class Frame:
    """One decoded frame: the JSON header and the body split into segments."""

    header: dict[str, Any]
    segments: list[bytes] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.header.get("t", ""))


def encode_frame(
    header: dict[str, Any], segments: Sequence[bytes] = (), *, max_frame_bytes: int
) -> bytes:
    """Encode one frame; ``header["seg"]`` is set from ``segments``.

    Raises PayloadTooLarge when the whole frame would exceed ``max_frame_bytes``.
    """
    if segments:
        header = {**header, "seg": [len(s) for s in segments]}
    head = orjson.dumps(header)
    body_len = sum(len(s) for s in segments)
    rest_len = 4 + len(head) + body_len
    if PREFIX_SIZE + rest_len > max_frame_bytes:
        raise PayloadTooLarge(
            f"frame of {PREFIX_SIZE + rest_len} bytes exceeds the cap of {max_frame_bytes} bytes"
        )
    return b"".join((HEADERS.pack(rest_len, len(head)), head, *segments))


def rest_length(prefix: bytes, *, max_frame_bytes: int) -> int:
    """Validate a 4-byte length prefix and return the number of bytes that follow it."""
    rest_len: int = PREFIX.unpack(prefix)[0]
    if PREFIX_SIZE + rest_len > max_frame_bytes:
        raise FrameTooLarge(
            f"frame announces {PREFIX_SIZE + rest_len} bytes, above the cap of "
            f"{max_frame_bytes} bytes"
        )
    if rest_len < MIN_REST:
        raise ProtocolError(f"frame length {rest_len} is too short")
    return rest_len


def decode_rest(rest: bytes | memoryview) -> Frame:
    """Decode everything after the length prefix into a Frame."""
    (header_len,) = PREFIX.unpack_from(rest, 0)
    end = 4 + header_len
    if end > len(rest):
        raise ProtocolError(f"header length {header_len} overruns the frame ({len(rest)} bytes)")
    try:
        header = orjson.loads(rest[4:end])
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not a JSON object")
    body_len = len(rest) - end
    seg = header.get("seg")
    if seg is None:
        if body_len:
            raise ProtocolError(f"frame has a {body_len}-byte body but no 'seg' list")
        return Frame(header)
    if type(seg) is not list:
        raise ProtocolError("'seg' must be a list of non-negative integers")
    total = 0
    for n in seg:
        if type(n) is not int or n < 0:
            raise ProtocolError("'seg' must be a list of non-negative integers")
        total += n
    if total != body_len:
        raise ProtocolError(f"'seg' sums to {total} but the body has {body_len} bytes")
    if not seg:
        return Frame(header, [])
    view = rest if isinstance(rest, memoryview) else memoryview(rest)
    segments: list[bytes] = []
    pos = end
    for n in seg:
        segments.append(bytes(view[pos : pos + n]))
        pos += n
    return Frame(header, segments)


class FrameDecoder:
    """Incremental decoder: feed it arbitrary chunks, get complete frames back.

    Frames that arrive whole in one chunk (the usual case) are decoded straight from it;
    only a partial frame's bytes are kept until the rest arrives.
    """

    def __init__(self, *, max_frame_bytes: int) -> None:
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._need: int | None = None  # the buffered frame's whole length, once known

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes and return every frame they complete (possibly none).

        Raises ProtocolError (or FrameTooLarge) as soon as the stream is known to be bad; the
        decoder must not be used after that.
        """
        if self._buffer:
            self._buffer += data
            need = self._need
            if need is None and len(self._buffer) >= PREFIX_SIZE:
                need = self._need = PREFIX_SIZE + rest_length(
                    bytes(self._buffer[:PREFIX_SIZE]), max_frame_bytes=self._max
                )
            if need is None or len(self._buffer) < need:
                return []
            data = bytes(self._buffer)
            self._buffer.clear()
            self._need = None
        frames: list[Frame] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        limit = self._max - PREFIX_SIZE
        while end - pos >= PREFIX_SIZE:
            (rest_len,) = PREFIX.unpack_from(data, pos)
            if rest_len > limit or rest_len < MIN_REST:  # rest_length raises the error
                rest_length(data[pos : pos + PREFIX_SIZE], max_frame_bytes=self._max)
            stop = pos + PREFIX_SIZE + rest_len
            if stop > end:
                self._need = stop - pos
                break
            frames.append(decode_rest(view[pos + PREFIX_SIZE : stop]))
            pos = stop
        if pos < end:
            self._buffer += data[pos:]
        return frames
