"""Request bodies of HTTP ingest turned into records, and answers turned into JSON: no I/O.

Formats (the Confluent REST Proxy's, so its clients work unchanged, plus NDJSON):

- v2 ``POST /topics/{topic}``: ``{"records": [{"key": .., "value": .., "partition": ..}]}``
  with ``application/vnd.kafka.json.v2+json`` (JSON key and value) or
  ``application/vnd.kafka.binary.v2+json`` (base64 key and value).
- v3 ``POST /v3/clusters/{cluster}/topics/{topic}/records``: one or more JSON objects one
  after another, ``{"partition_id", "headers", "key": {"type", "data"}, "value": {...},
  "timestamp"}`` with types ``JSON``, ``BINARY`` (base64) and ``STRING``.
- NDJSON (``application/x-ndjson``) to ``POST /topics/{topic}``: one JSON value per line,
  written as it came; key and event time from the fields the config names.

A record that is not valid becomes a :class:`Rejected` with the reason; the others go on.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from haeryu.connectors.runtime import Headers, RecordShape, SourceRecord, now_ms
from haeryu.kafka.delivery import Delivery

JSON_V2 = "application/vnd.kafka.json.v2+json"
BINARY_V2 = "application/vnd.kafka.binary.v2+json"
NDJSON = ("application/x-ndjson", "application/jsonlines", "application/x-jsonlines")

# REST Proxy error codes used in answers.
UNPROCESSABLE = 42201
BAD_REQUEST = 40001
KAFKA_ERROR = 50002
RETRIABLE_KAFKA_ERROR = 50003


class BodyError(ValueError):
    """The request as a whole is malformed (HTTP 422 / 400)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input record that cannot be written, the raw bytes and why."""

    raw: bytes
    reason: str
    code: int = UNPROCESSABLE


Item = SourceRecord | Rejected


def parse_v2(
    body: bytes,
    topic: str,
    *,
    binary: bool,
    shape: RecordShape,
    headers: Headers,
    max_record_bytes: int,
) -> list[Item]:
    """The records of a v2 body (JSON or binary embedded format)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"request body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise BodyError('expected {"records": [...]} in the request body')
    for schema_field in ("key_schema", "value_schema", "key_schema_id", "value_schema_id"):
        if doc.get(schema_field) is not None:
            raise BodyError(f"{schema_field}: schemas are not supported; use json or binary")
    out: list[Item] = []
    for entry in doc["records"]:
        try:
            out.append(_v2_record(entry, topic, binary, shape, headers, max_record_bytes))
        except ValueError as exc:
            out.append(Rejected(orjson.dumps(entry), str(exc)))
    return out


def _v2_record(
    entry: Any, topic: str, binary: bool, shape: RecordShape, headers: Headers, limit: int
) -> SourceRecord:
    if not isinstance(entry, dict):
        raise ValueError("a record must be a JSON object with a value")
    if "value" not in entry:
        raise ValueError("record without a value")
    partition = _partition(entry.get("partition"))
    raw_key = entry.get("key")
    if binary:
        value = _b64(entry["value"], "value")
        key = None if raw_key is None else _b64(raw_key, "key")
        timestamp = None
    else:
        value = orjson.dumps(entry["value"])
        key = None if raw_key is None else _json_key(raw_key)
        if key is None:
            key = shape.key_of(entry["value"])
        timestamp = shape.timestamp_of(entry["value"])
    _check_size(value, key, limit)
    return SourceRecord(topic, value, key, timestamp, headers, partition)


@dataclass
class NdjsonBody:
    """The records of an NDJSON body, column by column, and the lines rejected."""

    values: list[bytes]
    keys: list[bytes | None] | None
    timestamps: list[int | None] | None
    rejected: list[tuple[int, Rejected]]

    @property
    def received(self) -> int:
        return len(self.values) + len(self.rejected)


def parse_ndjson(body: bytes, *, shape: RecordShape, max_record_bytes: int) -> NdjsonBody:
    """One record per non-empty line; the line itself becomes the value, unchanged."""
    values: list[bytes] = []
    keys: list[bytes | None] | None = [] if shape.key_field is not None else None
    stamps: list[int | None] | None = [] if shape.timestamp_field is not None else None
    rejected: list[tuple[int, Rejected]] = []
    key_of = shape.key_getter()
    # A top-level key field is read inline: a call per record costs as much as parsing.
    flat_key = shape.key_field if shape.key_field and "." not in shape.key_field else None
    loads = orjson.loads
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n")
    index = 0
    for line in body.split(b"\n"):
        if not line:
            continue
        index += 1
        try:
            doc = loads(line)
            if len(line) > max_record_bytes:
                raise ValueError(f"record of {len(line)} bytes over the limit {max_record_bytes}")
            if flat_key is not None and type(doc) is dict:
                key = doc.get(flat_key)
                if key is not None:
                    key = key.encode() if type(key) is str else str(key).encode()
            else:
                key = key_of(doc) if key_of is not None else None
            stamp = shape.timestamp_of(doc) if stamps is not None else None
        except (orjson.JSONDecodeError, ValueError) as exc:
            rejected.append((index - 1, Rejected(line, str(exc))))
            continue
        values.append(line)
        if keys is not None:
            keys.append(key)
        if stamps is not None:
            stamps.append(stamp)
    return NdjsonBody(values, keys, stamps, rejected)


def iter_json_objects(buffer: bytearray) -> Iterator[Any]:
    """Take the complete JSON values at the front of ``buffer`` (whitespace between them).

    What is consumed is removed from ``buffer``; an incomplete value stays for the next
    chunk.  Raises :class:`BodyError` when the front can never become valid JSON.
    """
    while True:
        start = 0
        while start < len(buffer) and buffer[start] in b" \t\r\n":
            start += 1
        if start:
            del buffer[:start]
        if not buffer:
            return
        end = _value_end(buffer)
        if end is None:
            return
        value = buffer[:end]
        del buffer[:end]
        try:
            yield orjson.loads(bytes(value))
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"not a JSON object: {exc}") from None


def _value_end(buf: bytearray) -> int | None:
    """End of the first JSON object or array in ``buf``, ``None`` while it is incomplete."""
    if buf[0] not in b"{[":
        raise BodyError("expected a JSON object per record")
    depth = 0
    in_string = False
    escaped = False
    for i, ch in enumerate(buf):
        if in_string:
            if escaped:
                escaped = False
            elif ch == 0x5C:  # backslash
                escaped = True
            elif ch == 0x22:
                in_string = False
        elif ch == 0x22:
            in_string = True
        elif ch in b"{[":
            depth += 1
        elif ch in b"}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def parse_v3_record(
    doc: Any, topic: str, *, shape: RecordShape, headers: Headers, max_record_bytes: int
) -> Item:
    """One v3 produce request object."""
    raw = orjson.dumps(doc)
    try:
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
        partition = _partition(doc.get("partition_id"))
        key, _ = _v3_data(doc.get("key"), "key")
        value, payload = _v3_data(doc.get("value"), "value")
        extra = tuple(_v3_header(h) for h in doc.get("headers") or ())
        stamp = doc.get("timestamp")
        if stamp is not None:
            timestamp = _iso_ms(stamp)
        else:
            timestamp = (shape.timestamp_of(payload) if payload is not None else None) or now_ms()
        if key is None and payload is not None:
            key = shape.key_of(payload)
        _check_size(value or b"", key, max_record_bytes)
    except ValueError as exc:
        return Rejected(raw, str(exc), BAD_REQUEST)
    return SourceRecord(topic, value or b"", key, timestamp, headers + extra, partition)


def _v3_data(part: Any, name: str) -> tuple[bytes | None, Any]:
    if part is None:
        return None, None
    if not isinstance(part, dict):
        raise ValueError(f"{name} must be an object with type and data")
    kind = str(part.get("type", "JSON")).upper()
    if "schema_id" in part or "subject" in part or "schema" in part:
        raise ValueError(f"{name}: schemas are not supported; use JSON, BINARY or STRING")
    data = part.get("data")
    if data is None:
        return None, None
    if kind == "JSON":
        return orjson.dumps(data), data
    if kind == "BINARY":
        return _b64(data, name), None
    if kind == "STRING":
        if not isinstance(data, str):
            raise ValueError(f"{name}: STRING data must be a string")
        return data.encode(), None
    raise ValueError(f"{name}: unsupported type {kind!r}; expected JSON, BINARY or STRING")


def _v3_header(h: Any) -> tuple[str, bytes]:
    if not isinstance(h, dict) or not isinstance(h.get("name"), str):
        raise ValueError('a header is {"name": str, "value": base64}')
    value = h.get("value")
    return h["name"], b"" if value is None else _b64(value, f"header {h['name']}")


def _b64(data: Any, name: str) -> bytes:
    if not isinstance(data, str):
        raise ValueError(f"{name} must be a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} is not valid base64") from None


def _json_key(key: Any) -> bytes:
    return key.encode() if isinstance(key, str) else orjson.dumps(key)


def _partition(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"partition must be a non-negative integer, got {value!r}")
    return value


def _iso_ms(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError("timestamp must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _check_size(value: bytes, key: bytes | None, limit: int) -> None:
    size = len(value) + (len(key) if key else 0)
    if size > limit:
        raise ValueError(f"record of {size} bytes over the limit {limit}")


# --------------------------------------------------------------------------- answers


def offsets_answer(items: list[Item], deliveries: dict[int, Delivery]) -> bytes:
    """The v2 answer: one ``offsets`` entry per input record, in order."""
    offsets = []
    for i, item in enumerate(items):
        if isinstance(item, Rejected):
            offsets.append(_error_entry(item.code, item.reason))
            continue
        d = deliveries[i]
        if d.error is None:
            offsets.append(
                {"partition": d.partition, "offset": d.offset, "error_code": None, "error": None}
            )
        else:
            code = RETRIABLE_KAFKA_ERROR if d.retriable else KAFKA_ERROR
            offsets.append(_error_entry(code, d.error))
    return orjson.dumps({"key_schema_id": None, "value_schema_id": None, "offsets": offsets})


def ndjson_answer(body: NdjsonBody) -> bytes:
    """The NDJSON answer: how many records came and were written, and the rejected
    ones by their 0-based line number among the non-empty lines."""
    errors = [{"index": i, "error_code": r.code, "error": r.reason} for i, r in body.rejected]
    return orjson.dumps({"received": body.received, "written": len(body.values), "errors": errors})


def _error_entry(code: int, reason: str) -> dict[str, Any]:
    return {"partition": None, "offset": None, "error_code": code, "error": reason}


def v3_answer(cluster: str, item: Item, delivery: Delivery | None) -> tuple[int, bytes]:
    """HTTP status and JSON of a v3 answer for one record."""
    if isinstance(item, Rejected):
        return 400, orjson.dumps({"error_code": 400, "message": item.reason})
    assert delivery is not None
    if delivery.error is not None:
        status = 503 if delivery.retriable else 500
        return status, orjson.dumps({"error_code": status, "message": delivery.error})
    stamp = item.timestamp_ms if item.timestamp_ms is not None else now_ms()
    answer = {
        "error_code": 200,
        "cluster_id": cluster,
        "topic_name": delivery.topic,
        "partition_id": delivery.partition,
        "offset": delivery.offset,
        "timestamp": datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="milliseconds"),
        "key": None if item.key is None else {"type": "BINARY", "size": len(item.key)},
        "value": {"type": "BINARY", "size": len(item.value)},
    }
    return 200, orjson.dumps(answer)


def error_body(code: int, message: str) -> bytes:
    """REST Proxy's error document."""
    return orjson.dumps({"error_code": code, "message": message})
