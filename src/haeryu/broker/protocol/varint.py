"""Kafka's variable-length integers: the one reader (and writer) the broker uses.

Unsigned varints (flexible versions' lengths and tag counts) and zigzag varints (record
fields) share one encoding: 7 bits per byte, least significant first, high bit set on
every byte but the last, at most 10 bytes. Callers turn :class:`VarintError` into their
own protocol error (framing, request lengths, record batches).
"""

from __future__ import annotations

__all__ = ["VarintError", "read_uvarint", "read_varint", "write_varint"]

_MAX_SHIFT = 63  # 10 bytes: enough for any int64


class VarintError(ValueError):
    """A varint runs past the end of its buffer or is longer than 10 bytes."""


def read_uvarint(buf: bytes | bytearray | memoryview, pos: int, end: int = -1) -> tuple[int, int]:
    """Read an unsigned varint at ``pos`` (stopping at ``end``, default the buffer's end).

    Returns (value, position after it).
    """
    if end < 0:
        end = len(buf)
    result = shift = 0
    while True:
        if pos >= end:
            raise VarintError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > _MAX_SHIFT:
            raise VarintError("varint longer than 10 bytes")


def read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Read a zigzag-encoded (signed) varint/varlong; returns (value, next position)."""
    raw, pos = read_uvarint(buf, pos)
    return (raw >> 1) ^ -(raw & 1), pos


def write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` zigzag-encoded."""
    raw = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while raw >= 0x80:
        out.append((raw & 0x7F) | 0x80)
        raw >>= 7
    out.append(raw)
