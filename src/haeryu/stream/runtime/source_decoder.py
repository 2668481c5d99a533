"""Decode a micro-batch of one source topic into a frame plus dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from haeryu.stream.api.choices import KeyFormat, TimestampUnit
from haeryu.stream.columns import EVENT_TIME, HEADERS, KEY, OFFSET, PARTITION, TIMESTAMP, TOPIC
from haeryu.stream.errors import PlanError
from haeryu.stream.formats.base import Decoded, Format, RawBatch, dead_letters, empty_dead_letters


@dataclass(slots=True)
class SourceDecoder:
    """Decode a :class:`RawBatch` of one source topic into a frame plus dead letters.

    Parameters
    ----------
    format
        How values are decoded.
    timestamp
        Field holding event time, or ``None`` for the Kafka message timestamp.
    timestamp_unit
        Unit of a numeric event-time field.
    key_format
        ``"string"`` (UTF-8, the default) or ``"bytes"`` for the :data:`KEY` column.
    headers
        Whether to build the :data:`HEADERS` column (costs a little per record).
    """

    format: Format
    timestamp: str | None = None
    timestamp_unit: TimestampUnit = "ms"
    key_format: KeyFormat = "string"
    headers: bool = False
    stage: str = field(default="decode")
    metadata: frozenset[str] = frozenset({KEY, TIMESTAMP})
    """Optional metadata columns to build (``_key``, ``_timestamp``); the executor leaves
    out those no operator reads, which saves extracting them from every message."""

    def decode(self, batch: RawBatch) -> Decoded:
        """Decode every record of ``batch``; nothing is dropped silently."""
        errors: list[tuple[int, str]] = []
        values = batch.values
        if None in values or b"" in values:
            # Tombstones and empty values cannot be decoded; sort them out before the
            # bulk parser, which would silently skip empty lines.
            keep = [i for i, v in enumerate(values) if v]
            errors.extend((i, "empty value (tombstone)") for i, v in enumerate(values) if not v)
            present = [values[i] for i in keep]
        else:
            keep = list(range(len(values)))
            present = values
        if present:
            frame, good_local, format_errors = self.format.decode(present)  # type: ignore[arg-type]
        else:
            frame, good_local, format_errors = pl.DataFrame(), [], []
        if len(keep) == len(values):
            good = good_local
            errors.extend(format_errors)
        else:
            good = [keep[i] for i in good_local]
            errors.extend((keep[i], e) for i, e in format_errors)
        frame = self._with_metadata(frame, batch, good)
        frame, more = self._with_event_time(frame, good)
        errors.extend(more)
        errors.sort()
        dead = dead_letters(batch, errors, self.stage) if errors else empty_dead_letters()
        return Decoded(frame, dead)

    def _with_metadata(self, frame: pl.DataFrame, batch: RawBatch, good: list[int]) -> pl.DataFrame:
        everything = len(good) == len(batch)

        def pick(values: list[Any]) -> list[Any]:
            return values if everything else [values[i] for i in good]

        columns: list[pl.Series] = [
            pl.Series(PARTITION, pick(batch.partitions), dtype=pl.Int32),
            pl.Series(OFFSET, pick(batch.offsets), dtype=pl.Int64),
        ]
        if KEY in self.metadata:
            keys = pl.Series(KEY, pick(batch.keys), dtype=pl.Binary)
            columns.append(_utf8(keys) if self.key_format == "string" else keys)
        if TIMESTAMP in self.metadata or self.timestamp is None:
            stamps = pl.Series(TIMESTAMP, pick(batch.timestamps), dtype=pl.Int64)
            columns.append(stamps.cast(pl.Datetime("ms", "UTC")))
        if self.headers:
            headers = batch.headers or [None] * len(batch)
            columns.append(
                pl.Series(
                    HEADERS,
                    [[{"key": k, "value": v} for k, v in h or ()] for h in pick(headers)],
                    dtype=pl.List(pl.Struct({"key": pl.String(), "value": pl.Binary()})),
                )
            )
        frame = pl.DataFrame(columns) if frame.width == 0 else frame.with_columns(columns)
        return frame.with_columns(pl.lit(batch.topic, pl.String).alias(TOPIC))

    def _with_event_time(
        self, frame: pl.DataFrame, good: list[int]
    ) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
        if self.timestamp is None:
            return frame.with_columns(pl.col(TIMESTAMP).dt.epoch("ms").alias(EVENT_TIME)), []
        if self.timestamp not in frame.columns:
            if frame.height == 0:
                return frame.with_columns(pl.lit(None, pl.Int64).alias(EVENT_TIME)), []
            raise PlanError(
                f"timestamp field {self.timestamp!r} is not in the decoded records "
                f"(columns: {', '.join(frame.columns)})"
            )
        frame = frame.with_columns(
            event_time_ms(
                pl.col(self.timestamp), frame.schema[self.timestamp], self.timestamp_unit
            ).alias(EVENT_TIME)
        )
        missing = frame[EVENT_TIME].is_null()
        if not missing.any():
            return frame, []
        errors = [
            (good[i], f"event time field {self.timestamp!r} is missing or unreadable")
            for i in missing.arg_true().to_list()
        ]
        return frame.filter(~missing), errors


def event_time_ms(expr: pl.Expr, dtype: pl.DataType, unit: str = "ms") -> pl.Expr:
    """Expression turning a timestamp column of any common type into epoch milliseconds."""
    if isinstance(dtype, pl.Datetime | pl.Date):
        return expr.dt.epoch("ms")
    if dtype == pl.String:
        return expr.str.to_datetime(strict=False, time_unit="ms", time_zone="UTC").dt.epoch("ms")
    factor = {"s": 1000.0, "ms": 1.0, "us": 0.001, "ns": 0.000001}[unit]
    if dtype.is_integer() and unit in ("s", "ms"):
        return (expr.cast(pl.Int64) * int(factor)).cast(pl.Int64)
    if dtype.is_numeric():
        return (expr.cast(pl.Float64) * factor).floor().cast(pl.Int64)
    raise PlanError(f"cannot use a {dtype} column as event time; use a number, string or datetime")


def _utf8(keys: pl.Series) -> pl.Series:
    import pyarrow as pa

    arrow = keys.to_arrow()
    try:
        return pl.Series(KEY, arrow.cast(pa.large_string()), dtype=pl.String)
    except pa.ArrowInvalid:
        # Rare: a binary key.  Replace undecodable bytes rather than failing the record.
        text = [k.decode("utf-8", "replace") if k is not None else None for k in keys.to_list()]
        return pl.Series(KEY, text, dtype=pl.String)
