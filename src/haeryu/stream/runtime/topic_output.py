"""Turning frames into Kafka records: topic sinks, routes, repartitioning and the DLQ.

Everything here talks to a :class:`TopicWriter` (``send`` / ``flush``), so it runs the
same against confluent-kafka (:class:`haeryu.stream.kafka.producer.KafkaWriter`) and against the
in-memory writer tests use.

Exactly-once output: every record written with ``exactly_once=True`` carries a header
``haeryu-id`` naming its origin -- pipeline, input topic, input partition -- and an id
that is the same when the record is produced again by a replay (input offset and
ordinal, or window start and key).  After a restart the worker reads back what the lost
checkpoint interval already wrote (:func:`ids_in_record`, on restore) and drops those ids
(:mod:`haeryu.stream.runtime.suppression`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from haeryu.stream.columns import (
    CHUNK_ROW,
    EVENT_TIME,
    HEADER_ID,
    KEY,
    OFFSET,
    ORIGIN_COLUMN,
    PARTITION,
    ROW_ID,
    TARGET_PARTITION,
    TIMESTAMP,
    TOPIC,
)
from haeryu.stream.formats.base import Format, RawBatch
from haeryu.stream.runtime.shuffle_time import is_progress
from haeryu.stream.runtime.suppression import Suppression

ID_HEADER = "haeryu-id"
"""Header carrying ``<pipeline>|<topic>|<partition>|<id>`` of an exactly-once record."""

Headers = list[tuple[str, bytes]]


class TopicWriter(Protocol):
    """Where topic sinks send records."""

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue records for ``topic`` (optionally all to one partition)."""
        ...

    def flush(self, timeout: float = 60.0) -> None:
        """Block until every queued record is acknowledged; raise SinkError otherwise."""
        ...

    def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic``."""
        ...


@dataclass
class MemoryWriter:
    """A :class:`TopicWriter` keeping records in lists, per topic (for tests)."""

    partition_counts: dict[str, int] = field(default_factory=dict)
    records: dict[str, list[tuple[bytes | str | None, bytes | str, Headers, int | None]]] = field(
        default_factory=dict
    )

    def send(
        self,
        topic: str,
        values: Sequence[bytes | str],
        keys: Sequence[bytes | str | None] | None,
        headers: Sequence[Headers] | None = None,
        partition: int | None = None,
    ) -> None:
        """Append the records."""
        out = self.records.setdefault(topic, [])
        for i, value in enumerate(values):
            out.append(
                (
                    keys[i] if keys is not None else None,
                    value,
                    list(headers[i]) if headers is not None else [],
                    partition,
                )
            )

    def flush(self, timeout: float = 60.0) -> None:
        """Nothing to wait for."""

    def partitions(self, topic: str) -> int:
        """Configured count, 1 by default."""
        return self.partition_counts.get(topic, 1)


def row_ids(frame: pl.DataFrame, node: int, *, repeats: bool = True) -> pl.Expr:
    """Replay-stable id of each row: a window id, or input offset plus ordinal.

    Rows produced from the same input record (``explode``, ``flat_map``) are numbered
    in order, so each gets its own id (``repeats=False`` skips the numbering when no
    operator upstream can turn one record into several).  Rows with neither (window
    updates) get a null id: they are written at-least-once, without the header.
    """
    if ROW_ID in frame.columns:
        return pl.concat_str([pl.lit(f"{node}"), pl.col(ROW_ID)], separator=":")
    if OFFSET not in frame.columns:
        return pl.lit(None, pl.String)
    if CHUNK_ROW in frame.columns:
        # Read from a repartition chunk: the chunk's offset and the row's place in it.
        base = [
            pl.lit(f"{node}"),
            pl.col(OFFSET).cast(pl.String),
            pl.col(CHUNK_ROW).cast(pl.String),
        ]
        if repeats:
            ordinal = (
                pl.int_range(pl.len()).over(PARTITION, OFFSET, CHUNK_ROW)
                if frame.height
                else pl.lit(0)
            )
            base.append(ordinal.cast(pl.String))
        return pl.concat_str(base, separator=":")
    if not repeats:
        return pl.concat_str([pl.lit(f"{node}"), pl.col(OFFSET).cast(pl.String)], separator=":")
    ordinal = pl.int_range(pl.len()).over(PARTITION, OFFSET) if frame.height else pl.lit(0)
    return pl.concat_str(
        [pl.lit(f"{node}"), pl.col(OFFSET).cast(pl.String), ordinal.cast(pl.String)],
        separator=":",
    )


@dataclass
class Origin:
    """Identifies where exactly-once records come from: pipeline and input topic."""

    pipeline: str
    topic: str

    def prefix(self, partition: int) -> str:
        """Header prefix for records originating from ``partition``."""
        return f"{self.pipeline}|{self.topic}|{partition}|"


def with_ids(
    frame: pl.DataFrame, node: int, origin: Origin, *, repeats: bool = True
) -> pl.DataFrame:
    """Add the full exactly-once id (``__hid``) of every row."""
    partition = pl.col(PARTITION).cast(pl.String) if PARTITION in frame.columns else pl.lit("0")
    return frame.with_columns(
        pl.concat_str(
            [
                pl.lit(f"{origin.pipeline}|{origin.topic}"),
                partition,
                row_ids(frame, node, repeats=repeats),
            ],
            separator="|",
        ).alias(HEADER_ID)
    )


def suppress(frame: pl.DataFrame, seen: Suppression, origin: Origin) -> pl.DataFrame:
    """Drop rows whose ``__hid`` was already written before a crash."""
    return seen.filter(frame, origin.topic)


def encode_keys(frame: pl.DataFrame, key: pl.Expr | None) -> list[bytes | str | None] | None:
    """Record keys: the key expression as text, else the source record key."""
    if key is not None:
        column = frame.select(key.cast(pl.String)).to_series()
        return column.to_list()
    if KEY in frame.columns:
        values = frame[KEY]
        if values.null_count() == frame.height:
            return None
        return values.to_list()
    return None


def send_rows(
    writer: TopicWriter,
    topic: str,
    frame: pl.DataFrame,
    fmt: Format,
    key: pl.Expr | None,
    exactly_once: bool,
) -> int:
    """Encode ``frame`` and send one record per row; returns the number sent."""
    if frame.height == 0:
        return 0
    values = fmt.encode(frame.drop(HEADER_ID, ROW_ID, strict=False))
    keys = encode_keys(frame, key)
    headers: list[Headers] | None = None
    if exactly_once:
        ids = frame[HEADER_ID].cast(pl.Binary).to_list()
        headers = [[(ID_HEADER, h)] if h is not None else [] for h in ids]
    writer.send(topic, values, keys, headers)
    return frame.height


def ids_in_record(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] | None,
    *,
    chunked: bool,
    prefixes: tuple[str, ...],
) -> list[str]:
    """Exactly-once ids a written record carries that start with one of ``prefixes``.

    A repartition chunk (``chunked``) holds one id per row in :data:`ORIGIN_COLUMN` (a
    progress record of the same topic holds none); any other record carries its id in
    the ``haeryu-id`` header.
    """
    found: list[str] = []
    if chunked and value and not is_progress(value):  # progress records carry no ids
        ids = pl.read_ipc(io.BytesIO(value)).get_column(ORIGIN_COLUMN).to_list()
        found += [i for i in ids if i and i.startswith(prefixes)]
    for name, data in headers or ():
        if name == ID_HEADER and data is not None:
            text = data.decode()
            if text.startswith(prefixes):
                found.append(text)
    return found


# --------------------------------------------------------------------------- repartition


def send_repartitioned(
    writer: TopicWriter, topic: str, frame: pl.DataFrame, keys: Sequence[str]
) -> int:
    """Send rows to the partition their key hashes to, as Arrow IPC chunks.

    Rows keep every column, metadata included (their event time above all), so the
    consuming side continues with exactly what the producing side had.
    """
    if frame.height == 0:
        return 0
    n = writer.partitions(topic)
    target = pl.struct([pl.col(k) for k in keys]).hash(seed=0) % n
    chunks = frame.drop(PARTITION, OFFSET, TOPIC, TIMESTAMP, CHUNK_ROW, strict=False).with_columns(
        target.cast(pl.Int32).alias(TARGET_PARTITION)
    )
    for (partition,), part in chunks.partition_by(
        TARGET_PARTITION, as_dict=True, maintain_order=True
    ).items():
        body = part.drop(TARGET_PARTITION)
        # Chunks stay well under the default 1 MB record limit.
        rows_per_chunk = max(1, int(body.height * 400_000 / max(body.estimated_size(), 1)))
        for start in range(0, body.height, rows_per_chunk):
            buffer = io.BytesIO()
            body.slice(start, rows_per_chunk).write_ipc(buffer, compression="lz4")
            writer.send(topic, [buffer.getvalue()], None, None, partition=int(partition))
    return frame.height


Progress = list[tuple[int, int, bytes]]
"""Progress records read with a batch: (partition, offset, value)."""


def decode_repartitioned(batch: RawBatch) -> tuple[pl.DataFrame, Progress]:
    """Rebuild rows from Arrow IPC chunks, and collect the progress records between them.

    ``_offset`` is the chunk's offset and ``__chunk_row`` the row's place in the chunk, so ids
    and first/last stay exact.
    """
    frames = []
    progress: Progress = []
    for value, partition, offset in zip(batch.values, batch.partitions, batch.offsets, strict=True):
        if not value:
            continue
        if is_progress(value):
            progress.append((partition, offset, value))
            continue
        chunk = pl.read_ipc(io.BytesIO(value))
        frames.append(
            chunk.with_columns(
                pl.lit(partition, pl.Int32).alias(PARTITION),
                pl.lit(offset, pl.Int64).alias(OFFSET),
                pl.lit(batch.topic, pl.String).alias(TOPIC),
                pl.int_range(pl.len(), dtype=pl.UInt32).alias(CHUNK_ROW),
            )
        )
    if not frames:
        return pl.DataFrame(), progress
    frame = pl.concat(frames, how="diagonal_relaxed")
    if EVENT_TIME in frame.columns:
        frame = frame.with_columns(pl.col(EVENT_TIME).cast(pl.Int64))
    return frame, progress


# --------------------------------------------------------------------------- dead letters


def send_dead_letters(
    writer: TopicWriter,
    topic: str,
    dead: pl.DataFrame,
    origin: Origin | None,
    seen: Suppression | None = None,
) -> int:
    """Write dead letters: original key and value, reason and origin in headers.

    The header names follow Kafka Connect's dead-letter convention loosely:
    ``haeryu.error``, ``haeryu.stage``, ``haeryu.topic``, ``haeryu.partition``,
    ``haeryu.offset``.
    """
    if dead.height == 0:
        return 0
    values: list[bytes | str] = []
    keys: list[bytes | str | None] = []
    headers: list[Headers] = []
    row = pl.col(CHUNK_ROW) if CHUNK_ROW in dead.columns else pl.lit(None, pl.UInt32)
    rows = dead.select(
        TOPIC, PARTITION, OFFSET, "error", "stage", KEY, "value", row.alias(CHUNK_ROW)
    ).iter_rows()
    for src_topic, partition, offset, error, stage, key, value, chunk_row in rows:
        place = f"{offset}" if chunk_row is None else f"{offset}.{chunk_row}"
        hid = f"{origin.prefix(partition)}dlq:{place}:{stage}" if origin is not None else None
        if hid is not None and seen is not None and seen.take(hid, origin.topic):  # type: ignore[union-attr]
            continue
        values.append(value if value is not None else b"")
        keys.append(key)
        item: Headers = [
            ("haeryu.error", str(error).encode()),
            ("haeryu.stage", str(stage).encode()),
            ("haeryu.topic", str(src_topic).encode()),
            ("haeryu.partition", str(partition).encode()),
            ("haeryu.offset", str(offset).encode()),
        ]
        if hid is not None:
            item.append((ID_HEADER, hid.encode()))
        headers.append(item)
    writer.send(topic, values, keys, headers)
    return len(values)
