"""Every API's whole-request error response encodes in every version the broker serves.

The server answers a failed handler (UNKNOWN_SERVER_ERROR) or an unsupported version
(UNSUPPORTED_VERSION) with the API's error response; if that response could not be
encoded the connection would close after all. Requests here hold one element in every
array, so per-topic, per-partition and per-resource entries are exercised.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import typing
import uuid
from typing import Any

import pytest

from haeryu.broker import handlers
from haeryu.broker.errors import ErrorCode
from haeryu.broker.handlers._registry import REGISTRY, codec, known_version
from haeryu.broker.protocol.shape import shape

handlers.load_all()

_SAMPLE: dict[str, Any] = {
    "bool": False,
    "bytes": b"",
    "float64": 0.0,
    "records": None,
    "string": "x",
    "uuid": uuid.UUID(int=7),
    "timedelta_i32": datetime.timedelta(0),
    "timedelta_i64": datetime.timedelta(0),
    "datetime_i64": None,
    "error_code": ErrorCode.none,
}


def _one_of_everything(cls: type) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) in (typing.Union, typing.types.UnionType):  # type: ignore[attr-defined]
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        is_array = typing.get_origin(hint) is tuple
        elem = typing.get_args(hint)[0] if is_array else hint
        kafka_type = f.metadata.get("kafka_type")
        if kafka_type is None and dataclasses.is_dataclass(elem):
            value: Any = _one_of_everything(elem)  # type: ignore[arg-type]
        elif f.default is not dataclasses.MISSING and not is_array:
            value = f.default
        else:
            value = _SAMPLE.get(kafka_type or "", 0)
        kwargs[f.name] = (value,) if is_array else value
    return cls(**kwargs)


_CASES = [
    (spec.key, version)
    for spec in REGISTRY.values()
    for version in range(spec.max_version + 2)
    if known_version(spec.key, version)
]


@pytest.mark.parametrize(("key", "version"), _CASES, ids=[f"{k}v{v}" for k, v in _CASES])
def test_error_response_encodes(key: int, version: int) -> None:
    c = codec(key, version)
    request = _one_of_everything(c.request_cls)
    if key == 0:  # Produce: acks=0 expects no answer at all
        assert REGISTRY[key].error_response(request, ErrorCode.unknown_server_error) is None
        request = dataclasses.replace(request, acks=-1)
    result = REGISTRY[key].error_response(request, ErrorCode.unknown_server_error)
    buf = io.BytesIO()
    c.write(buf, shape(c.response_cls, result))
    assert buf.getvalue()
