"""Sans-IO Kafka framing: bytes in, requests out; responses in, bytes out.

Nothing here touches a socket, so every rule is tested with byte fixtures and fuzzed
without a network. The wire format is a 4-byte big-endian size followed by that many
bytes. A request starts with a header:

* v1 (non-flexible APIs): api_key int16, api_version int16, correlation_id int32,
  client_id nullable string with an int16 length.
* v2 (flexible APIs): the same, then tagged fields. The client_id keeps its int16
  length even in v2 -- a detail that breaks implementations that treat the whole header
  as flexible.

Responses use header v0 (correlation_id) or v1 (correlation_id + empty tagged fields) for
flexible versions, except ApiVersions, which always answers with v0 so that a client
that does not yet know what the broker speaks can read it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from haeryu.broker.protocol.varint import VarintError, read_uvarint

_SIZE = struct.Struct(">i")
_HEADER_FIXED = struct.Struct(">hhih")
API_VERSIONS_KEY = 18

#: Largest frame a client may send. Kafka's socket.request.max.bytes default is 100 MiB;
#: anything larger is treated as garbage (or a TLS/HTTP client on the wrong port).
MAX_FRAME_BYTES = 100 * 1024 * 1024


class FramingError(Exception):
    """The byte stream cannot be a Kafka request stream; the connection must close."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """The fields of a request header the broker needs."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


class FrameDecoder:
    """Split a byte stream into complete frames.

    ``feed`` bytes as they arrive, then take frames from ``frames()`` until it is empty.
    Frames are returned without the size prefix. A negative or absurd size raises
    :class:`FramingError`; the caller closes the connection.
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def frames(self) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(buf, pos)
            if size < 8 or size > self._max:
                raise FramingError(f"invalid frame size {size}")
            if end - pos - 4 < size:
                break
            out.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return out


def _skip_tagged_fields(frame: bytes, pos: int) -> int:
    try:
        count, pos = read_uvarint(frame, pos)
        for _ in range(count):
            _tag, pos = read_uvarint(frame, pos)
            size, pos = read_uvarint(frame, pos)
            pos += size
            if pos > len(frame):
                raise FramingError("tagged field runs past the end of the frame")
    except VarintError as exc:
        raise FramingError(f"request header tags: {exc}") from exc
    return pos


def parse_header_prefix(frame: bytes) -> tuple[RequestHeader, int]:
    """Parse the fixed part of a request header (v1 layout).

    Returns the header and the position right after the client id. Whether tagged
    fields follow depends on the API version, which the caller knows once it has looked
    the API up; see :func:`skip_header_tags`.
    """
    if len(frame) < _HEADER_FIXED.size:
        raise FramingError("frame shorter than a request header")
    api_key, api_version, correlation_id, client_len = _HEADER_FIXED.unpack_from(frame, 0)
    pos = _HEADER_FIXED.size
    client_id: str | None = None
    if client_len >= 0:
        if pos + client_len > len(frame):
            raise FramingError("client id runs past the end of the frame")
        client_id = frame[pos : pos + client_len].decode("utf-8", "replace")
        pos += client_len
    elif client_len != -1:
        raise FramingError(f"invalid client id length {client_len}")
    return RequestHeader(api_key, api_version, correlation_id, client_id), pos


def skip_header_tags(frame: bytes, pos: int) -> int:
    """Skip the tagged fields that end a v2 request header."""
    return _skip_tagged_fields(frame, pos)


def response_prefix(correlation_id: int, body_size: int, *, flexible_header: bool) -> bytes:
    """The bytes before a response body: size, correlation id, empty tagged fields.

    Kept apart from the body so a large fetch response is never copied just to put
    eight bytes in front of it.
    """
    if flexible_header:
        return _SIZE.pack(body_size + 5) + _SIZE.pack(correlation_id) + b"\x00"
    return _SIZE.pack(body_size + 4) + _SIZE.pack(correlation_id)


def encode_response(correlation_id: int, body: bytes, *, flexible_header: bool) -> bytes:
    """Frame a response body: size, correlation id, optional empty tagged fields."""
    return response_prefix(correlation_id, len(body), flexible_header=flexible_header) + body
