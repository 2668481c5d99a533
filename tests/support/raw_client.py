"""Kafka on the wire, by hand: for tests that must send what no real client would.

Requests are kio entities built from plain dicts (:func:`build`, which fills every field
a version has and the dict omits with its default or zero value) and framed here, header included,
so a test controls every byte. The request header is written by hand because its v2
form is not "v1 made flexible": the client id keeps its int16 length and only a
tagged-fields byte is added. Responses are read back with kio after skipping the
response header: v0 (correlation id) for ApiVersions and every non-flexible version,
v1 (correlation id + tagged fields) for the other flexible versions.

>>> with RawClient(broker.bootstrap) as c:                  # doctest: +SKIP
...     md = c.call(METADATA, 12, {"topics": None})
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import itertools
import resource
import socket
import struct
import time
import types
import typing
import uuid
from collections.abc import Mapping
from functools import cache
from pkgutil import resolve_name
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from haeryu.broker.protocol.records import Record, decode_records, encode_batch, iter_batches

PRODUCE = 0
FETCH = 1
LIST_OFFSETS = 2
METADATA = 3
OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
SYNC_GROUP = 14
API_VERSIONS = 18
CREATE_TOPICS = 19
DELETE_TOPICS = 20
INIT_PRODUCER_ID = 22
DESCRIBE_CONFIGS = 32

_SIZE = struct.Struct(">i")


class PeerClosed(ConnectionError):
    """The broker closed the connection (EOF or reset) while a response was expected."""


@cache
def classes(api_key: int, version: int) -> tuple[type, type]:
    """kio's (request class, response class) of one API version."""
    paths = schema_name_map[api_key_map[api_key]][version]
    return resolve_name(paths[EntityType.request]), resolve_name(paths[EntityType.response])


def is_flexible(api_key: int, version: int) -> bool:
    return bool(classes(api_key, version)[0].__flexible__)


_ZERO: dict[str, Any] = {
    "bool": False,
    "bytes": b"",
    "float64": 0.0,
    "records": None,
    "string": "",
    "uuid": uuid.UUID(int=0),
    "timedelta_i32": datetime.timedelta(0),
    "timedelta_i64": datetime.timedelta(0),
    "datetime_i64": None,
    "error_code": ErrorCode.none,
}


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """(element type, is-array) of a field's type hint, ``| None`` removed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def _convert(kafka_type: str | None, value: Any) -> Any:
    if kafka_type in ("timedelta_i32", "timedelta_i64") and isinstance(value, int):
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "error_code" and isinstance(value, int):
        return ErrorCode(value)
    return value


def build_entity(cls: type, data: Mapping[str, Any]) -> Any:
    """``cls(...)`` from a dict; fields the dict lacks get their default or zero value."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        elem, is_array = _unwrap(hints[f.name])
        nested = elem if kafka_type is None and dataclasses.is_dataclass(elem) else None
        if f.name in data:
            value = data[f.name]
            if value is not None and nested is not None:
                value = (
                    tuple(build_entity(nested, v) for v in value)
                    if is_array
                    else build_entity(nested, value)
                )
            elif value is not None and is_array:
                value = tuple(_convert(kafka_type, v) for v in value)
            else:
                value = _convert(kafka_type, value)
            kwargs[f.name] = value
        elif f.default is not dataclasses.MISSING:
            continue
        elif is_array:
            kwargs[f.name] = ()
        elif nested is not None:
            kwargs[f.name] = build_entity(nested, {})
        else:
            kwargs[f.name] = _ZERO.get(kafka_type or "", 0)
    return cls(**kwargs)


def build(api_key: int, version: int, fields: Mapping[str, Any]) -> Any:
    """The kio request entity of ``version`` built from a version-agnostic dict
    (keys the version lacks are ignored)."""
    return build_entity(classes(api_key, version)[0], fields)


def request_body(api_key: int, version: int, fields: Mapping[str, Any]) -> bytes:
    req_cls = classes(api_key, version)[0]
    buf = io.BytesIO()
    entity_writer(req_cls)(buf, build(api_key, version, fields))
    return buf.getvalue()


def request_header(
    api_key: int, version: int, correlation_id: int, client_id: str | None = "haeryu-raw"
) -> bytes:
    """Request header v1, or v2 (= v1 + an empty tagged-fields byte) for flexible versions."""
    out = struct.pack(">hhi", api_key, version, correlation_id)
    if client_id is None:
        out += struct.pack(">h", -1)
    else:
        raw = client_id.encode()
        out += struct.pack(">h", len(raw)) + raw
    return out + (b"\x00" if is_flexible(api_key, version) else b"")


def request_payload(
    api_key: int,
    version: int,
    fields: Mapping[str, Any],
    correlation_id: int,
    client_id: str | None = "haeryu-raw",
) -> bytes:
    """Header and body of a request, without the size prefix."""
    return request_header(api_key, version, correlation_id, client_id) + request_body(
        api_key, version, fields
    )


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its int32 size."""
    return _SIZE.pack(len(payload)) + payload


def _skip_tagged_fields(buf: bytes, pos: int) -> int:
    count, pos = _uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = _uvarint(buf, pos)
        size, pos = _uvarint(buf, pos)
        pos += size
    return pos


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def parse_response(api_key: int, version: int, payload: bytes) -> tuple[int, Any]:
    """(correlation id, kio response entity) of one response frame without its size."""
    (correlation_id,) = _SIZE.unpack_from(payload, 0)
    pos = 4
    if is_flexible(api_key, version) and api_key != API_VERSIONS:
        pos = _skip_tagged_fields(payload, pos)
    entity, _ = entity_reader(classes(api_key, version)[1])(payload, pos)
    return correlation_id, entity


class RawClient:
    """One blocking TCP connection to a broker that speaks only what it is told."""

    def __init__(self, bootstrap: str, *, timeout: float = 15.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self._corr = itertools.count(1)
        self._buf = bytearray()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # -- sending ----------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(
        self,
        api_key: int,
        version: int,
        fields: Mapping[str, Any],
        *,
        correlation_id: int | None = None,
    ) -> int:
        """Send one request; return its correlation id."""
        corr = next(self._corr) if correlation_id is None else correlation_id
        self.send_bytes(frame(request_payload(api_key, version, fields, corr)))
        return corr

    # -- receiving --------------------------------------------------------------------

    def _fill(self, n: int, deadline: float) -> None:
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no complete response within {self.timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise PeerClosed("connection reset by the broker") from exc
            if not chunk:
                raise PeerClosed("the broker closed the connection")
            self._buf += chunk

    def recv_payload(self, timeout: float | None = None) -> bytes:
        """The next response frame, without its size prefix."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(4, deadline)
        (size,) = _SIZE.unpack_from(self._buf, 0)
        self._fill(4 + size, deadline)
        payload = bytes(self._buf[4 : 4 + size])
        del self._buf[: 4 + size]
        return payload

    def recv(self, api_key: int, version: int) -> tuple[int, Any]:
        return parse_response(api_key, version, self.recv_payload())

    def call(self, api_key: int, version: int, fields: Mapping[str, Any]) -> Any:
        """Send a request and return its parsed response (checking the correlation id)."""
        corr = self.send(api_key, version, fields)
        got, response = self.recv(api_key, version)
        assert got == corr, f"correlation id {got} answers request {corr}"
        return response

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Read until the broker closes the connection; False if it is still open."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


# -- request bodies the tests use over and over -----------------------------------------


def produce_fields(
    topic: str, partition: int, records: bytes | None, *, acks: int = -1
) -> dict[str, Any]:
    return {
        "transactional_id": None,
        "acks": acks,
        "timeout": 10_000,
        "topic_data": [
            {"name": topic, "partition_data": [{"index": partition, "records": records}]}
        ],
    }


def fetch_fields(
    topic: str, partition: int, offset: int, *, max_wait_ms: int = 0
) -> dict[str, Any]:
    return {
        "replica_id": -1,
        "max_wait": max_wait_ms,
        "min_bytes": 1,
        "max_bytes": 1 << 20,
        "isolation_level": 0,
        "session_id": 0,
        "session_epoch": -1,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {
                        "partition": partition,
                        "current_leader_epoch": -1,
                        "fetch_offset": offset,
                        "last_fetched_epoch": -1,
                        "log_start_offset": -1,
                        "partition_max_bytes": 1 << 20,
                    }
                ],
            }
        ],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def list_offsets_fields(topic: str, partition: int, timestamp: int = -1) -> dict[str, Any]:
    return {
        "replica_id": -1,
        "isolation_level": 0,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {
                        "partition_index": partition,
                        "current_leader_epoch": -1,
                        "timestamp": timestamp,
                    }
                ],
            }
        ],
    }


def create_topics_fields(
    name: str, partitions: int = 1, *, validate_only: bool = False
) -> dict[str, Any]:
    return {
        "topics": [
            {
                "name": name,
                "num_partitions": partitions,
                "replication_factor": 1,
                "assignments": [],
                "configs": [],
            }
        ],
        "timeout": 10_000,
        "validate_only": validate_only,
    }


def simple_batch(values: list[bytes], **kwargs: Any) -> bytes:
    """A valid v2 batch of key-less records (``kwargs`` go to ``encode_batch``)."""
    ts = int(time.time() * 1000)
    return encode_batch([(None, v, [], ts) for v in values], **kwargs)


def high_watermark(client: RawClient, topic: str, partition: int = 0) -> int:
    """The log end offset, via ListOffsets v7 (latest)."""
    response = client.call(LIST_OFFSETS, 7, list_offsets_fields(topic, partition))
    part = response.topics[0].partitions[0]
    assert part.error_code == 0, part.error_code
    return int(part.offset)


def produce(client: RawClient, topic: str, partition: int, batch: bytes, **kw: Any) -> Any:
    """Produce one batch with Produce v9; return the partition's response entry."""
    response = client.call(PRODUCE, 9, produce_fields(topic, partition, batch, **kw))
    return response.responses[0].partition_responses[0]


def fetch_all(client: RawClient, topic: str, partition: int = 0) -> list[Record]:
    """Every record from the log start to the high watermark, decoded (Fetch v12)."""
    records: list[Record] = []
    offset = 0
    while True:
        response = client.call(FETCH, 12, fetch_fields(topic, partition, offset))
        part = response.responses[0].partitions[0]
        assert part.error_code == 0, part.error_code
        data = part.records or b""
        start = offset
        for pos, header in iter_batches(data, allow_partial_tail=True):
            for rec in decode_records(data[pos : pos + header.size]):
                if rec.offset >= offset:
                    records.append(rec)
            offset = header.last_offset + 1
        if offset >= part.high_watermark or not data:
            return records
        assert offset > start, f"Fetch at offset {start} returned no complete batch"


#: Address space a broker under attack may use. Its normal peak is a few hundred MiB.
BROKER_ADDRESS_SPACE = 4 << 30


def cap_address_space(broker: Any, limit: int = BROKER_ADDRESS_SPACE) -> None:
    """Lower the running broker process's RLIMIT_AS to ``limit`` bytes.

    A request that makes the broker reserve tens of GiB at once (a huge claimed array
    length) then fails the same way on every machine, instead of passing on a host with
    lots of RAM and overcommit and killing the broker on a small one.
    """
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.prlimit(broker.proc.pid, resource.RLIMIT_AS, (limit, hard))
