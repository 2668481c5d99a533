"""Windows behind a repartition topic: exact, and exactly-once across a crash.

The executor runs in-process against the in-memory writer.  An upstream executor
writes the repartition topic (two source partitions, one of them 300 ms of event time
behind the other, plus a few records that are really late); downstream executors read
that log the way a consumer does, interleaving the two repartition partitions.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl

from haeryu.stream import Pipeline, col, windows
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.runtime.executor import Executor
from haeryu.stream.runtime.topic_output import ID_HEADER, MemoryWriter

REPARTITION = "shuf.repartition.k"
PARTITIONS = 2
LATE_EVERY = 40


def pipeline() -> Pipeline:
    p = Pipeline("shuf")
    src = p.source("in", schema={"k": str, "v": int, "ts": int}, timestamp="ts")
    stats = (
        src.key_by("k")
        .window(windows.tumbling("100ms"), idle_timeout="1s")
        .agg(n=pl.len(), total=col("v").sum())
    )
    stats.to_topic("stats")
    stats.late().to_topic("late")
    return p


def source_records() -> dict[int, list[dict]]:
    """Partition 1 runs 300 ms behind partition 0; every 40th of partition 0 is late."""
    out: dict[int, list[dict]] = {0: [], 1: []}
    for i in range(600):
        ts0 = 1_000 + i * 7 - (2_000 if i % LATE_EVERY == LATE_EVERY - 1 else 0)
        out[0].append({"k": f"k{i % 5}", "v": i, "ts": ts0})
        out[1].append({"k": f"k{i % 3}", "v": 10_000 + i, "ts": 700 + i * 7})
    return out


def repartition_log() -> dict[int, list[bytes]]:
    """Run the upstream side: source batches alternate between the two partitions."""
    writer = MemoryWriter(partition_counts={REPARTITION: PARTITIONS})
    upstream = Executor(pipeline(), writer)
    upstream.own("in", [0, 1], 0.0, 2)
    records = source_records()
    now = 0.0
    for start in range(0, 600, 50):
        for partition in (0, 1):
            part = records[partition][start : start + 50]
            now += 0.01
            batch = RawBatch(
                "in",
                [json.dumps(r).encode() for r in part],
                [None] * len(part),
                [partition] * len(part),
                list(range(start, start + len(part))),
                [0] * len(part),
            )
            upstream.process(batch, now)
    log: dict[int, list[bytes]] = {q: [] for q in range(PARTITIONS)}
    for _, value, _, q in writer.records[REPARTITION]:
        assert isinstance(value, bytes)
        log[q or 0].append(value)
    return log


def consume(
    executor: Executor,
    log: dict[int, list[bytes]],
    *,
    size: int,
    upto: int | None = None,
    now: Callable[[int], float] = lambda i: i * 0.01,
) -> None:
    """Read the log as a consumer would: ``size`` records of each partition per batch."""
    position = dict.fromkeys(log, 0)
    step = 0
    while any(position[q] < len(log[q]) for q in log):
        values, partitions, offsets = [], [], []
        for q in log:
            end = min(position[q] + size, len(log[q]))
            if upto is not None:
                end = min(end, upto)
            for offset in range(position[q], end):
                values.append(log[q][offset])
                partitions.append(q)
                offsets.append(offset)
            position[q] = max(end, position[q])
        if not values:
            break
        batch = RawBatch(
            REPARTITION, values, [None] * len(values), partitions, offsets, [0] * len(values)
        )
        executor.process(batch, now(step))
        step += 1


def written(writer: MemoryWriter, topic: str) -> list[tuple[str, dict]]:
    """(exactly-once id, record) of everything written to ``topic``."""
    out = []
    for _, value, headers, _ in writer.records.get(topic, []):
        ids = [h.decode() for name, h in headers if name == ID_HEADER]
        assert len(ids) == 1
        out.append((ids[0], json.loads(value)))
    return out


def windows_of(records: list[tuple[str, dict]]) -> list[tuple]:
    return sorted((r["k"], r["window_start"], r["n"], r["total"]) for _, r in records)


def test_shuffle_order_makes_no_record_late_and_late_ids_are_per_record() -> None:
    log = repartition_log()
    writer = MemoryWriter()
    executor = Executor(pipeline(), writer)
    consume(executor, log, size=7)
    executor.finish()
    late = written(writer, "late")
    # Only the records that were late in their own source partition, each once (the
    # first batch has no watermark to be late against yet).
    want_late = [v for v in range(50, 600) if v % LATE_EVERY == LATE_EVERY - 1]
    assert sorted(r["v"] for _, r in late) == want_late
    assert len({hid for hid, _ in late}) == len(late), "late ids must identify each record"
    # Every other record is counted in exactly one window.
    stats = windows_of(written(writer, "stats"))
    assert sum(n for _, _, n, _ in stats) == 1200 - len(want_late)
    assert len({(k, start) for k, start, _, _ in stats}) == len(stats)


def test_a_window_emitted_before_a_crash_is_emitted_again_identically() -> None:
    """The chain of the chaos run: emit on close, die before the first checkpoint, replay.

    The replay reads the same log in other batches at other wall-clock times; the
    records the crashed run already wrote are suppressed by id.  Together the two runs
    must have written exactly what one uninterrupted run writes.
    """
    log = repartition_log()
    clean_writer = MemoryWriter()
    clean = Executor(pipeline(), clean_writer)
    consume(clean, log, size=7)
    clean.finish()

    crashed_writer = MemoryWriter()
    crashed = Executor(pipeline(), crashed_writer)
    consume(crashed, log, size=13, upto=len(log[0]) * 2 // 3)
    before = written(crashed_writer, "stats") + written(crashed_writer, "late")
    assert before, "the crashed run must have written something to replay against"

    writer = MemoryWriter()
    replay = Executor(pipeline(), writer)
    for q in range(PARTITIONS):
        prefix = f"shuf|{REPARTITION}|{q}|"
        ids = {hid for hid, _ in before if hid.startswith(prefix)}
        replay.seen.add((REPARTITION, q), ids, until=len(log[q]))
    consume(replay, log, size=5, now=lambda i: 50.0 + i * 3.0)
    replay.finish()

    stats = written(crashed_writer, "stats") + written(writer, "stats")
    late = written(crashed_writer, "late") + written(writer, "late")
    assert windows_of(stats) == windows_of(written(clean_writer, "stats"))
    assert sorted(hid for hid, _ in late) == sorted(hid for hid, _ in written(clean_writer, "late"))
    assert len(replay.seen) == 0, "every id written before the crash came back once"
