"""The sans-IO codec: frames split correctly however the bytes arrive."""

from __future__ import annotations

import struct

import pytest

from haeryu.broker.protocol.framing import (
    FrameDecoder,
    FramingError,
    encode_response,
    parse_header_prefix,
    skip_header_tags,
)


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def _header(api_key: int, version: int, corr: int, client: bytes | None) -> bytes:
    out = struct.pack(">hhi", api_key, version, corr)
    if client is None:
        return out + struct.pack(">h", -1)
    return out + struct.pack(">h", len(client)) + client


FRAMES = [_header(18, 3, 1, b"rdkafka") + b"\x00\x01\x02", _header(3, 12, 2, None) + b"\x00" * 9]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_frames_reassemble_for_any_chunking(chunk: int) -> None:
    stream = b"".join(_frame(f) for f in FRAMES)
    decoder = FrameDecoder()
    got: list[bytes] = []
    for i in range(0, len(stream), chunk):
        decoder.feed(stream[i : i + chunk])
        got.extend(decoder.frames())
    assert got == FRAMES
    assert decoder.buffered == 0


@pytest.mark.parametrize("size", [-1, 0, 7, 200 * 1024 * 1024])
def test_absurd_sizes_are_framing_errors(size: int) -> None:
    decoder = FrameDecoder()
    decoder.feed(struct.pack(">i", size) + b"x" * 8)
    with pytest.raises(FramingError):
        decoder.frames()


def test_header_v2_keeps_int16_client_id_then_tags() -> None:
    # Header v2 = v1 layout + tagged fields; the client id is NOT a compact string.
    raw = _header(0, 9, 42, b"client-x") + b"\x00" + b"BODY"
    header, pos = parse_header_prefix(raw)
    assert (header.api_key, header.api_version, header.correlation_id) == (0, 9, 42)
    assert header.client_id == "client-x"
    assert raw[skip_header_tags(raw, pos) :] == b"BODY"


def test_null_client_id() -> None:
    header, pos = parse_header_prefix(_header(3, 1, 7, None) + b"rest")
    assert header.client_id is None
    assert pos == 10


@pytest.mark.parametrize(
    "raw",
    [b"\x00\x01", _header(3, 1, 7, b"abc")[:-1], struct.pack(">hhih", 3, 1, 7, -5)],
)
def test_truncated_headers_raise(raw: bytes) -> None:
    with pytest.raises(FramingError):
        parse_header_prefix(raw)


def test_tagged_fields_past_end_raise() -> None:
    with pytest.raises(FramingError):
        skip_header_tags(b"\x01\x00\x7f", 0)


def test_response_headers() -> None:
    assert encode_response(5, b"ab", flexible_header=False) == b"\x00\x00\x00\x06\x00\x00\x00\x05ab"
    assert (
        encode_response(5, b"ab", flexible_header=True) == b"\x00\x00\x00\x07\x00\x00\x00\x05\x00ab"
    )
