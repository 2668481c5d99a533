"""The choices a pipeline declaration offers, as ``Literal`` types (one place to read them)."""

from __future__ import annotations

from typing import Literal

FormatName = Literal["json", "avro", "raw", "text"]
"""Record formats known by name: JSON objects, Avro records, bytes, UTF-8 text."""

TimestampUnit = Literal["s", "ms", "us", "ns"]
"""Unit of a numeric event-time field."""

KeyFormat = Literal["string", "bytes"]
"""How a record key appears in the ``_key`` column."""

JoinHow = Literal["left", "inner"]
"""Which rows a stream-table join keeps: all stream rows, or those with a table row."""

Emit = Literal["close", "update"]
"""When a window emits: once when it closes, or after every batch that touched it."""

AggregateKind = Literal[
    "count", "len", "sum", "min", "max", "mean", "var", "std", "first", "last", "quantile"
]
"""The aggregate functions windows compute as mergeable partial states."""
