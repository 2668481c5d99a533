"""Hypothesis: PartitionLog against a plain in-memory list of batches."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.broker.log import LogConfig, OffsetOutOfRange, PartitionLog
from haeryu.broker.protocol.records import iter_batches
from support.clock import FakeClock
from unit.broker.log.logfixtures import T0, batch


@dataclass
class ModelBatch:
    base: int
    count: int
    size: int
    timestamps: list[int]


append_op = st.tuples(
    st.just("append"),
    st.integers(1, 5),  # records
    st.integers(0, 120),  # value size
    st.integers(-50, 50),  # timestamp jitter
)
ops = st.lists(
    st.one_of(
        append_op, st.tuples(st.just("reopen")), st.tuples(st.just("delete"), st.floats(0, 1))
    ),
    min_size=1,
    max_size=60,
)


def _check(log: PartitionLog, model: list[ModelBatch], start: int, data: st.DataObject) -> None:
    end = model[-1].base + model[-1].count if model else start
    assert (log.log_start_offset, log.log_end_offset) == (start, end)
    live = [b for b in model if b.base + b.count > start]
    for _ in range(5):
        if start == end:
            break
        offset = data.draw(st.integers(start, end - 1))
        max_bytes = data.draw(st.integers(0, 2_000))
        got = [
            (h.base_offset, h.record_count) for _, h in iter_batches(log.read(offset, max_bytes))
        ]
        i = next(i for i, b in enumerate(live) if b.base <= offset < b.base + b.count)
        # Whole batches from the containing one, within max_bytes, at least one, and
        # never past the segment holding the first one.
        assert got[0] == (live[i].base, live[i].count)
        assert [(b.base, b.count) for b in live[i : i + len(got)]] == got
        assert len(got) == 1 or sum(b.size for b in live[i : i + len(got)]) <= max_bytes
    target = data.draw(st.integers(T0 - 100, T0 + 300))
    expected = next(
        (
            (b.base + j, ts)
            for b in live
            for j, ts in enumerate(b.timestamps)
            if ts >= target and b.base + j >= start
        ),
        None,
    )
    assert log.offset_for_timestamp(target) == expected
    with_ts = [(ts, b.base + j) for b in live for j, ts in enumerate(b.timestamps)]
    with_ts = [(ts, o) for ts, o in with_ts if o >= start]
    if with_ts:
        top = max(ts for ts, _ in with_ts)
        assert log.max_timestamp() == (min(o for ts, o in with_ts if ts == top), top)
    else:
        assert log.max_timestamp() == (-1, -1)


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(200, 1_500), st.integers(0, 400), st.data())
def test_log_matches_model(
    operations: list[tuple[object, ...]], segment_bytes: int, interval: int, data: st.DataObject
) -> None:
    config = LogConfig(segment_bytes=segment_bytes, index_interval_bytes=interval)
    clock = FakeClock()
    model: list[ModelBatch] = []
    start = 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "t-0"
        log = PartitionLog.open(directory, config, clock.ms)
        try:
            for op in operations:
                if op[0] == "append":
                    _, n, size, jitter = op
                    ts = T0 + len(model) * 5 + int(jitter)  # type: ignore[call-overload]
                    raw, header = batch(int(n), ts=ts, value=b"v" * int(size))  # type: ignore[call-overload]
                    result = log.append(raw, header)
                    model.append(
                        ModelBatch(
                            result.base_offset, int(n), len(raw), [ts + j for j in range(int(n))]
                        )
                    )  # type: ignore[call-overload]
                elif op[0] == "reopen":
                    log.close()
                    log = PartitionLog.open(directory, config, clock.ms)
                else:
                    end = log.log_end_offset
                    target = start + int((end - start) * float(op[1]))  # type: ignore[arg-type]
                    start = log.delete_records_before(target)
                    assert start == max(target, 0)
                _check(log, model, start, data)
            if start > 0:
                with pytest.raises(OffsetOutOfRange):
                    log.read(start - 1, 100)
        finally:
            log.close()
