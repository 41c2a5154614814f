"""The sans-IO frame codec, on bytes only."""

from __future__ import annotations

import struct

import orjson
import pytest
from fnbox.executor.codec import FrameDecoder, decode_rest, encode_frame, rest_length
from fnbox.executor.errors import FrameTooLarge, PayloadTooLarge, ProtocolError

CAP = 1024 * 1024


def raw_frame(header: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">II", 4 + len(header) + len(body), len(header)) + header + body


def test_round_trip_keeps_segments_as_bytes() -> None:
    segments = [b'{"type":"track"}', b"", "é\u2603".encode(), b"\x00\xff"]
    data = encode_frame({"t": "invoke", "id": 7}, segments, max_frame_bytes=CAP)
    (frame,) = FrameDecoder(max_frame_bytes=CAP).feed(data)
    assert frame.header == {"t": "invoke", "id": 7, "seg": [16, 0, 5, 2]}
    assert frame.segments == segments
    assert all(type(s) is bytes for s in frame.segments)


def test_layout_matches_protocol() -> None:
    data = encode_frame({"t": "ping", "id": 1}, max_frame_bytes=CAP)
    header = orjson.dumps({"t": "ping", "id": 1})
    assert data == struct.pack(">II", 4 + len(header), len(header)) + header


def test_partial_chunks_byte_by_byte() -> None:
    frames = [
        encode_frame({"t": "result", "id": i}, [b"x" * i, b"y"], max_frame_bytes=CAP)
        for i in range(1, 5)
    ]
    stream = b"".join(frames)
    decoder = FrameDecoder(max_frame_bytes=CAP)
    got = []
    for i in range(len(stream)):
        got += decoder.feed(stream[i : i + 1])
    assert [f.header["id"] for f in got] == [1, 2, 3, 4]
    assert [f.segments[0] for f in got] == [b"x", b"xx", b"xxx", b"xxxx"]
    assert decoder.buffered == 0


def test_several_frames_in_one_chunk_and_a_tail() -> None:
    a = encode_frame({"t": "pong", "id": 1}, max_frame_bytes=CAP)
    b = encode_frame({"t": "pong", "id": 2}, max_frame_bytes=CAP)
    decoder = FrameDecoder(max_frame_bytes=CAP)
    assert [f.header["id"] for f in decoder.feed(a + b + b[:5])] == [1, 2]
    assert [f.header["id"] for f in decoder.feed(b[5:])] == [2]


def test_oversize_is_refused_from_the_prefix_alone() -> None:
    decoder = FrameDecoder(max_frame_bytes=1000)
    with pytest.raises(FrameTooLarge):
        decoder.feed(struct.pack(">I", 5000))
    with pytest.raises(FrameTooLarge):
        rest_length(struct.pack(">I", 997), max_frame_bytes=1000)
    assert rest_length(struct.pack(">I", 996), max_frame_bytes=1000) == 996


def test_text_on_the_stream_is_a_protocol_error() -> None:
    # "Hello..." read as a length is ~1.2 GB: refused before anything is buffered.
    with pytest.raises(FrameTooLarge):
        FrameDecoder(max_frame_bytes=CAP).feed(b"Hello from a worker\n")


@pytest.mark.parametrize(
    "rest",
    [
        struct.pack(">I", 2) + b"{x",  # not JSON
        struct.pack(">I", 2) + b"[]",  # not an object
        struct.pack(">I", 99) + b"{}",  # header overruns
        raw_frame(b'{"seg":[3]}', b"ab")[4:],  # seg longer than body
        raw_frame(b'{"seg":[1]}', b"ab")[4:],  # seg shorter than body
        raw_frame(b"{}", b"ab")[4:],  # body without seg
        raw_frame(b'{"seg":[-1, 3]}', b"ab")[4:],  # negative length
        raw_frame(b'{"seg":"2"}', b"ab")[4:],  # seg not a list
    ],
)
def test_bad_headers(rest: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_rest(rest)


def test_too_short_length() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder(max_frame_bytes=CAP).feed(struct.pack(">I", 3) + b"abc")


def test_encode_refuses_frames_over_the_cap() -> None:
    with pytest.raises(PayloadTooLarge):
        encode_frame({"t": "invoke"}, [b"x" * 2000], max_frame_bytes=1000)
    data = encode_frame({"t": "i"}, [b"x" * 900], max_frame_bytes=1000)
    assert len(data) <= 1000
