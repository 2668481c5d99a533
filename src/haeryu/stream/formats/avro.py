"""Avro records with a known writer schema, decoded per record by fastavro.

Binary Avro carries no field names or type tags: a record is the declared schema's
fields in order, so a value of the wrong type or a missing field can only show as a
record that does not decode (or leaves bytes over).  Such a record is a dead letter
whose reason names the first field that could not be read (:func:`explain_avro`).
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from haeryu.stream.api.schema import Columns
from haeryu.stream.errors import SchemaError
from haeryu.stream.formats.base import payload


class AvroFormat:
    """Avro records with a known writer schema (fastavro), one record per value.

    Parameters
    ----------
    schema
        The Avro record schema (a dict or JSON string).
    confluent
        Values carry the Confluent Schema Registry framing (magic byte 0 and a 4-byte
        schema id) before the Avro body; it is stripped on read and written on encode
        with ``schema_id``.
    schema_id
        The registry id written in the framing when encoding with ``confluent=True``.
    """

    name = "avro"

    def __init__(
        self, schema: Mapping[str, Any] | str, *, confluent: bool = False, schema_id: int = 0
    ) -> None:
        import fastavro  # lazily: only Avro pipelines pay for the import

        raw = json.loads(schema) if isinstance(schema, str) else dict(schema)
        self._raw = raw
        self._parsed = fastavro.parse_schema(raw)
        self.columns = avro_columns(raw)
        self.confluent = confluent
        self.schema_id = schema_id
        self._reader: Callable[..., Any] = fastavro.schemaless_reader
        self._writer: Callable[..., Any] = fastavro.schemaless_writer

    def decode(self, values: list[bytes]) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
        """Decode each value (fastavro is per record) and build one frame."""
        records: list[Any] = []
        good: list[int] = []
        errors: list[tuple[int, str]] = []
        skip = 5 if self.confluent else 0
        for i, value in enumerate(values):
            if self.confluent and (len(value) < 5 or value[0] != 0):
                errors.append((i, "missing the Confluent framing (magic byte 0 + schema id)"))
                continue
            buffer = io.BytesIO(value)
            buffer.seek(skip)
            try:
                record = self._reader(buffer, self._parsed, None)
            except Exception as exc:  # fastavro raises many types for corrupt input
                reason = explain_avro(value[skip:], self._raw)
                errors.append((i, f"invalid Avro: {reason or f'{type(exc).__name__}: {exc}'}"))
                continue
            if buffer.tell() != len(value):
                errors.append(
                    (
                        i,
                        f"invalid Avro: {len(value) - buffer.tell()} bytes left after the last "
                        f"field {self._raw['fields'][-1]['name']!r}: not written with this schema",
                    )
                )
                continue
            records.append(record)
            good.append(i)
        frame = (
            pl.from_dicts(records, schema=self.columns.schema)
            if records
            else (self.columns.schema.to_frame())
        )
        return frame, good, errors

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Encode each row with the schema (and the Confluent framing if asked)."""
        out: list[bytes] = []
        prefix = b"\x00" + struct.pack(">I", self.schema_id) if self.confluent else b""
        for row in payload(frame).iter_rows(named=True):
            buffer = io.BytesIO()
            buffer.write(prefix)
            self._writer(buffer, self._parsed, row)
            out.append(buffer.getvalue())
        return out


def explain_avro(body: bytes, schema: Mapping[str, Any]) -> str | None:
    """The first field of ``schema`` that ``body`` cannot be read as, with its type.

    Reads growing prefixes of the record's fields (binary Avro is the fields in order),
    so it runs per record and only for records already known to be bad.
    """
    import fastavro

    fields = schema.get("fields", [])
    for k, spec in enumerate(fields):
        prefix = fastavro.parse_schema({**schema, "fields": fields[: k + 1]}, _write_hint=False)
        try:
            fastavro.schemaless_reader(io.BytesIO(body), prefix, None)
        except Exception as exc:
            return f"field {spec['name']!r} (expected {_avro_type_name(spec['type'])}) cannot be read: {type(exc).__name__}"
    return None


def _avro_type_name(spec: Any) -> str:
    if isinstance(spec, list):
        return " | ".join(_avro_type_name(s) for s in spec)
    if isinstance(spec, dict):
        return str(spec.get("logicalType") or spec.get("type"))
    return str(spec)


_AVRO_PRIMITIVES: dict[str, pl.DataType] = {
    "null": pl.Null(),
    "boolean": pl.Boolean(),
    "int": pl.Int32(),
    "long": pl.Int64(),
    "float": pl.Float32(),
    "double": pl.Float64(),
    "bytes": pl.Binary(),
    "string": pl.String(),
}
_AVRO_LOGICAL: dict[str, pl.DataType] = {
    "timestamp-millis": pl.Datetime("ms", "UTC"),
    "timestamp-micros": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
    "uuid": pl.String(),
}


def avro_columns(schema: Mapping[str, Any]) -> Columns:
    """Column types of an Avro record schema; non-nullable fields are required."""
    if schema.get("type") != "record":
        raise SchemaError("an Avro source needs a record schema ({'type': 'record', ...})")
    dtypes: dict[str, pl.DataType] = {}
    required: set[str] = set()
    for f in schema["fields"]:
        dtype, nullable = _avro_dtype(f["type"])
        dtypes[f["name"]] = dtype
        if not nullable:
            required.add(f["name"])
    return Columns(dtypes, frozenset(required))


def _avro_dtype(spec: Any) -> tuple[pl.DataType, bool]:
    if isinstance(spec, list):
        branches = [b for b in spec if b != "null"]
        if len(branches) != 1:
            raise SchemaError(f"Avro unions other than [null, X] are not supported: {spec!r}")
        return _avro_dtype(branches[0])[0], True
    if isinstance(spec, str):
        if spec in _AVRO_PRIMITIVES:
            return _AVRO_PRIMITIVES[spec], False
        raise SchemaError(f"named Avro type references are not supported: {spec!r}")
    logical = spec.get("logicalType")
    if logical in _AVRO_LOGICAL:
        return _AVRO_LOGICAL[logical], False
    kind = spec.get("type")
    if kind == "record":
        return pl.Struct(avro_columns(spec).dtypes), False
    if kind == "array":
        return pl.List(_avro_dtype(spec["items"])[0]), False
    if kind == "map":
        return pl.List(
            pl.Struct({"key": pl.String(), "value": _avro_dtype(spec["values"])[0]})
        ), False
    if kind in ("enum", "fixed"):
        return (pl.String() if kind == "enum" else pl.Binary()), False
    if isinstance(kind, str | list):
        return _avro_dtype(kind)
    raise SchemaError(f"unsupported Avro type {spec!r}")
