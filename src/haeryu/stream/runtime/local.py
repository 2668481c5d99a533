"""Run a pipeline in-process over lists of records, without a broker.

For tests, notebooks and docs examples: the same executor as a worker, fed from
Python lists, writing into memory.

>>> import polars as pl
>>> from haeryu.stream import Pipeline, col
>>> p = Pipeline("demo")
>>> p.source("readings").filter(col("t") > 1).to_topic("hot")
>>> out = run_local(p, {"readings": [{"t": 1}, {"t": 5}, b"not json"]})
>>> out.topic("hot")["t"].to_list()
[5]
>>> out.dead_letters()["error"].str.starts_with("invalid JSON").to_list()
[True]
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from haeryu.stream.api.pipeline import Pipeline
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.runtime.executor import BatchReport, Executor
from haeryu.stream.runtime.topic_output import MemoryWriter

Record = Mapping[str, Any] | bytes | str | None


@dataclass
class LocalResult:
    """What a local run wrote, per topic."""

    writer: MemoryWriter
    executor: Executor
    reports: list[BatchReport]

    def records(self, topic: str) -> list[tuple[Any, Any, list[tuple[str, bytes]]]]:
        """(key, value, headers) of every record written to ``topic``."""
        return [(k, v, h) for k, v, h, _ in self.writer.records.get(topic, [])]

    def topic(self, topic: str) -> pl.DataFrame:
        """Records of a JSON topic as a frame (record key in ``_key``)."""
        rows = self.records(topic)
        if not rows:
            return pl.DataFrame()
        values = [v if isinstance(v, bytes) else str(v).encode() for _, v, _ in rows]
        frame = pl.read_ndjson(b"\n".join(values), infer_schema_length=None)
        keys = [k.decode() if isinstance(k, bytes) else k for k, _, _ in rows]
        return frame.with_columns(pl.Series("_key", keys, dtype=pl.String))

    def dead_letters(self) -> pl.DataFrame:
        """Dead letters with their headers as columns (error, stage, topic, ...)."""
        rows = self.records(self.executor.pipeline.dlq_topic)
        out = []
        for key, value, headers in rows:
            item: dict[str, Any] = {"key": key, "value": value}
            for name, data in headers:
                item[name.removeprefix("haeryu.")] = data.decode()
            out.append(item)
        return pl.DataFrame(out) if out else pl.DataFrame()


def run_local(
    pipeline: Pipeline,
    inputs: Mapping[str, Sequence[Record]],
    *,
    batch_size: int = 1000,
    partitions: int = 1,
    keys: Mapping[str, Sequence[str | None]] | None = None,
    times: Sequence[float] | None = None,
    finish: bool = True,
) -> LocalResult:
    """Feed ``inputs`` through ``pipeline`` in batches and collect what it writes.

    Parameters
    ----------
    pipeline
        The pipeline.
    inputs
        Topic to records: dicts (encoded as JSON), bytes/str (as they are), or ``None``
        (a tombstone).  Records are spread over ``partitions`` round-robin, or by
        ``keys`` (hash of the key) when given.
    batch_size
        Records per micro-batch.
    partitions
        Partitions of every input topic.
    keys
        Record keys per topic, parallel to ``inputs``.
    times
        Wall-clock ``now`` per batch (for idle timeouts); by default 0.001 s apart.
    finish
        At the end of the input, close every open window (a bounded input's end).
    """
    writer = MemoryWriter()
    executor = Executor(pipeline, writer)
    for topic in executor.repartitions:
        writer.partition_counts[topic] = partitions
    cursors = dict.fromkeys(executor.repartitions, 0)
    reports: list[BatchReport] = []
    tables = {t: executor.tables[t] for t in executor.tables}
    step = 0
    now = 0.0
    for topic, records in inputs.items():
        encoded = [_encode(r) for r in records]
        topic_keys: list[str | None] = [None] * len(records)
        if keys and topic in keys:
            topic_keys = list(keys[topic])
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            chunk_keys = topic_keys[start : start + batch_size]
            parts = [
                (_hash(k) % partitions if k is not None else (start + i) % partitions)
                for i, k in enumerate(chunk_keys)
            ]
            offsets = _offsets(parts, topic_keys[:start], partitions)
            batch = RawBatch(
                topic,
                chunk,
                [k.encode() if k is not None else None for k in chunk_keys],
                parts,
                offsets,
                [0] * len(chunk),
            )
            now = times[step] if times is not None and step < len(times) else now + 0.001
            step += 1
            if topic in tables:
                tables[topic].apply(batch)
            else:
                reports.append(executor.process(batch, now))
                _feed_back(executor, writer, cursors, now, reports)
    if finish:
        executor.finish()
        _feed_back(executor, writer, cursors, now, reports)
        executor.finish()
    return LocalResult(writer, executor, reports)


def _feed_back(
    executor: Executor,
    writer: MemoryWriter,
    cursors: dict[str, int],
    now: float,
    reports: list[BatchReport],
) -> None:
    """Consume what was written to repartition topics, as a worker would."""
    for topic in cursors:
        records = writer.records.get(topic, [])[cursors[topic] :]
        if not records:
            continue
        next_offset: dict[int, int] = {}
        for _, _, _, partition in writer.records[topic][: cursors[topic]]:
            next_offset[partition or 0] = next_offset.get(partition or 0, 0) + 1
        partitions, offsets = [], []
        for _, _, _, partition in records:
            part = partition or 0
            partitions.append(part)
            offsets.append(next_offset.get(part, 0))
            next_offset[part] = next_offset.get(part, 0) + 1
        cursors[topic] += len(records)
        batch = RawBatch(
            topic,
            [v if isinstance(v, bytes) else v.encode() for _, v, _, _ in records],
            [None] * len(records),
            partitions,
            offsets,
            [0] * len(records),
        )
        reports.append(executor.process(batch, now))


def _offsets(parts: list[int], earlier_keys: list[str | None], n: int) -> list[int]:
    counts = [0] * n
    for i, k in enumerate(earlier_keys):
        counts[_hash(k) % n if k is not None else i % n] += 1
    out = []
    for partition in parts:
        out.append(counts[partition])
        counts[partition] += 1
    return out


def _encode(record: Record) -> bytes | None:
    if record is None:
        return None
    if isinstance(record, bytes):
        return record
    if isinstance(record, str):
        return record.encode()
    return json.dumps(dict(record), default=str).encode()


def _hash(key: str) -> int:
    return zlib.crc32(key.encode())
