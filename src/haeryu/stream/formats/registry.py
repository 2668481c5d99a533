"""Choosing a format by name for a source or sink declaration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haeryu.stream.api.choices import FormatName
from haeryu.stream.api.schema import SchemaLike
from haeryu.stream.errors import PlanError
from haeryu.stream.formats.base import Format
from haeryu.stream.formats.json import JsonFormat
from haeryu.stream.formats.raw import RawFormat


def make_format(
    format: FormatName | Format,
    schema: SchemaLike | Mapping[str, Any] | str | None,
    **options: Any,
) -> Format:
    """Build a :class:`Format` from a source or sink declaration."""
    if not isinstance(format, str):
        return format
    if format == "json":
        return JsonFormat(schema)  # type: ignore[arg-type]
    if format == "avro":
        from haeryu.stream.formats.avro import AvroFormat

        if schema is None:
            raise PlanError("format='avro' needs schema= (the Avro record schema)")
        return AvroFormat(schema, **options)  # type: ignore[arg-type]
    if format in ("raw", "text"):
        return RawFormat(as_text=format == "text")
    raise PlanError(f"unknown format {format!r}: choose 'json', 'avro', 'raw' or 'text'")
