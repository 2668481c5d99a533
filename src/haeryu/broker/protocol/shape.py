"""Build version-specific kio entities from plain, version-agnostic values.

Kafka responses differ between versions only by which fields exist. Handlers describe a
response once as nested dicts holding every field they know; :func:`shape` keeps the
fields the target version has, fills the ones it lacks with their zero value and converts
plain ints to the rich types kio expects (error codes, durations, timestamps). Handlers
therefore never branch on the version just to build a response.
"""

from __future__ import annotations

import datetime
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from typing import Any

from haeryu.broker.errors import ErrorCode

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_ZERO_UUID = uuid.UUID(int=0)

Converter = Callable[[Any], Any]


def _to_error(v: Any) -> Any:
    return v if isinstance(v, ErrorCode) else ErrorCode(int(v))


def _to_td(v: Any) -> Any:
    return v if isinstance(v, datetime.timedelta) else datetime.timedelta(milliseconds=int(v))


def _to_dt(v: Any) -> Any:
    if v is None or isinstance(v, datetime.datetime):
        return v
    if v < 0:
        return None
    return _EPOCH + datetime.timedelta(milliseconds=int(v))


_CONVERT: dict[str, Converter] = {
    "error_code": _to_error,
    "timedelta_i32": _to_td,
    "timedelta_i64": _to_td,
    "datetime_i64": _to_dt,
}

_ZERO: dict[str, Any] = {
    "bool": False,
    "bytes": b"",
    "error_code": ErrorCode.none,
    "float64": 0.0,
    "int8": 0,
    "int16": 0,
    "int32": 0,
    "int64": 0,
    "uint16": 0,
    "records": None,
    "string": "",
    "timedelta_i32": datetime.timedelta(0),
    "timedelta_i64": datetime.timedelta(0),
    "datetime_i64": None,
    "uuid": _ZERO_UUID,
}


@cache
def _plan(cls: type) -> list[tuple[str, str | None, type | None, bool, Any]]:
    """Per field: name, kafka_type, nested entity class, is-tuple, default."""
    hints = typing.get_type_hints(cls)
    plan = []
    for f in fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        nested: type | None = None
        is_tuple = False
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if typing.get_origin(hint) is tuple:
            is_tuple = True
            hint = typing.get_args(hint)[0]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        if kafka_type is None and isinstance(hint, type) and is_dataclass(hint):
            nested = hint
        default = f.default if f.default is not MISSING else MISSING
        if f.default_factory is not MISSING:
            default = f.default_factory()
        plan.append((f.name, kafka_type, nested, is_tuple, default))
    return plan


def shape(cls: type, data: Mapping[str, Any]) -> Any:
    """Return ``cls(...)`` built from ``data``, ignoring keys ``cls`` does not have."""
    kwargs: dict[str, Any] = {}
    for name, kafka_type, nested, is_tuple, default in _plan(cls):
        if name in data:
            value = data[name]
            if nested is not None:
                if is_tuple:
                    value = None if value is None else tuple(shape(nested, v) for v in value)
                elif value is not None:
                    value = shape(nested, value)
            elif kafka_type is not None:
                conv = _CONVERT.get(kafka_type)
                if conv is not None:
                    value = tuple(conv(v) for v in value) if is_tuple else conv(value)
                elif is_tuple:
                    value = tuple(value)
            kwargs[name] = value
        elif default is MISSING:
            if is_tuple:
                kwargs[name] = ()
            elif nested is not None:
                kwargs[name] = shape(nested, {})
            else:
                kwargs[name] = _ZERO.get(kafka_type or "")
    return cls(**kwargs)


def millis(value: datetime.timedelta | int | None) -> int:
    """A duration field of a request as integer milliseconds."""
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    return int(value)


def get(entity: object, name: str, default: Any = None) -> Any:
    """A request field that older versions lack, with a default."""
    return getattr(entity, name, default)
