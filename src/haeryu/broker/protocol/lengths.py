"""Bounds-check a request body before kio's native reader sees it.

kio 0.6.5's Rust reader reserves ``declared_length * sizeof(element)`` for an array
before reading its elements, so a body claiming 2**32 elements makes it request tens
of GiB and abort the whole process (Rust aborts on allocation failure; Python never
sees an exception). This walker follows the same schema, checks that every array,
string and bytes length fits in the bytes that are left, and raises
:class:`LengthError` otherwise. It only reads lengths; values are left to kio.
"""

from __future__ import annotations

import typing
from dataclasses import fields, is_dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Any

from haeryu.broker.protocol.varint import VarintError, read_uvarint

_FIXED = {
    "bool": 1,
    "int8": 1,
    "int16": 2,
    "uint16": 2,
    "error_code": 2,
    "int32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "float64": 8,
    "uuid": 16,
}


class LengthError(ValueError):
    """A length in the request exceeds the bytes that follow it."""


def _int(buf: bytes, pos: int, end: int, size: int) -> tuple[int, int]:
    if pos + size > end:
        raise LengthError("integer runs past the end")
    return int.from_bytes(buf[pos : pos + size], "big", signed=True), pos + size


@cache
def _plan(cls: type) -> tuple[list[tuple[Any, ...]], dict[int, tuple[Any, ...]], bool]:
    hints = typing.get_type_hints(cls)
    plain: list[tuple[Any, ...]] = []
    tagged: dict[int, tuple[Any, ...]] = {}
    for f in fields(cls):
        hint = hints[f.name]
        optional = False
        if typing.get_origin(hint) in (typing.Union, UnionType):
            optional = NoneType in typing.get_args(hint)
            hint = next(a for a in typing.get_args(hint) if a is not NoneType)
        is_array = typing.get_origin(hint) is tuple
        if is_array:
            hint = typing.get_args(hint)[0]
        nested = hint if is_dataclass(hint) else None
        entry = (f.metadata.get("kafka_type"), nested, is_array, optional)
        if "tag" in f.metadata:
            tagged[int(f.metadata["tag"])] = entry
        else:
            plain.append(entry)
    return plain, tagged, bool(getattr(cls, "__flexible__", False))


def _value(entry: tuple[Any, ...], flexible: bool, buf: bytes, pos: int, end: int) -> int:
    kafka_type, nested, is_array, optional = entry
    if is_array:
        if flexible:
            n, pos = read_uvarint(buf, pos, end)
            n -= 1
        else:
            n, pos = _int(buf, pos, end, 4)
        if n > end - pos:
            raise LengthError(f"array of {n} elements in {end - pos} bytes")
        for _ in range(max(n, 0)):
            pos = _one(kafka_type, nested, False, flexible, buf, pos, end)
        return pos
    return _one(kafka_type, nested, optional, flexible, buf, pos, end)


def _one(
    kafka_type: str | None,
    nested: type | None,
    optional: bool,
    flexible: bool,
    buf: bytes,
    pos: int,
    end: int,
) -> int:
    if nested is not None:
        if optional:
            marker, pos = _int(buf, pos, end, 1)
            if marker < 0:
                return pos
        return _walk(nested, buf, pos, end)
    if kafka_type in _FIXED:
        if pos + _FIXED[kafka_type] > end:
            raise LengthError(f"{kafka_type} runs past the end")
        return pos + _FIXED[kafka_type]
    if kafka_type in ("string", "bytes", "records"):
        if flexible:
            n, pos = read_uvarint(buf, pos, end)
            n -= 1
        else:
            n, pos = _int(buf, pos, end, 2 if kafka_type == "string" else 4)
        if n > end - pos:
            raise LengthError(f"{kafka_type} of {n} bytes in {end - pos} bytes")
        return pos + max(n, 0)
    raise LengthError(f"unknown kafka type {kafka_type!r}")


def walk(cls: type, buf: bytes, pos: int, end: int | None = None) -> int:
    """Check every length in the ``cls`` entity at ``buf[pos:end]``; return its end."""
    try:
        return _walk(cls, buf, pos, len(buf) if end is None else end)
    except VarintError as exc:
        raise LengthError(str(exc)) from exc


def _walk(cls: type, buf: bytes, pos: int, end: int) -> int:
    plain, tagged, flexible = _plan(cls)
    for entry in plain:
        pos = _value(entry, flexible, buf, pos, end)
    if flexible:
        count, pos = read_uvarint(buf, pos, end)
        if count > end - pos:
            raise LengthError(f"{count} tagged fields in {end - pos} bytes")
        for _ in range(count):
            tag, pos = read_uvarint(buf, pos, end)
            size, pos = read_uvarint(buf, pos, end)
            if size > end - pos:
                raise LengthError(f"tagged field of {size} bytes in {end - pos} bytes")
            if tag in tagged:
                _value(tagged[tag], flexible, buf, pos, pos + size)
            pos += size
    return pos
