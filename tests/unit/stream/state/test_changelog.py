"""Changelog records: manifests, chunked snapshots, slots, stale chunks; watermarks."""

from __future__ import annotations

import polars as pl
import pytest

from haeryu.stream import windows
from haeryu.stream.api.aggregates import parse
from haeryu.stream.errors import StateError
from haeryu.stream.runtime.keyed_state import StatefulOperator
from haeryu.stream.runtime.watermarks import Watermarks
from haeryu.stream.runtime.window_aggregation import WindowOperator
from haeryu.stream.state.changelog import (
    MANIFEST_KEY,
    Manifest,
    OpEntry,
    decode_snapshot,
    encode_chunks,
    latest_records,
)


def test_manifest_round_trip() -> None:
    manifest = Manifest(
        3,
        120,
        {"4": OpEntry(1, 3, {"groups": 2, "sketches": -1}, {"max_event": 9})},
        {"out": {0: 5, 1: 7}},
    )
    assert Manifest.decode(manifest.encode()) == manifest
    with pytest.raises(StateError):
        Manifest.decode(b"{not json")


def test_large_frames_are_split_into_chunks_and_read_back() -> None:
    frame = pl.DataFrame(
        {"k": [f"key-{i}" for i in range(60_000)], "v": [float(i) for i in range(60_000)]}
    )
    records, parts = encode_chunks("7", 1, 42, {"groups": frame, "sketches": None})
    assert parts["groups"] > 1 and parts["sketches"] == -1
    assert all(len(v) < 1_000_000 for _, v in records)
    frames, meta = decode_snapshot("7", OpEntry(1, 42, parts, {"a": 1}), dict(records))
    assert frames["groups"] is not None and frames["groups"].equals(frame)
    assert frames["sketches"] is None and meta == {"a": 1}


def test_a_chunk_from_another_checkpoint_is_detected() -> None:
    records, parts = encode_chunks("7", 0, 1, {"groups": pl.DataFrame({"a": [1]})})
    with pytest.raises(StateError, match="checkpoint 1"):
        decode_snapshot("7", OpEntry(0, 2, parts), dict(records))
    with pytest.raises(StateError, match="missing"):
        decode_snapshot("7", OpEntry(1, 1, parts), dict(records))


def test_latest_records_follow_log_order_and_tombstones() -> None:
    log = [
        (b"a", b"1"),
        (b"b", b"1"),
        (b"a", b"2"),
        (b"b", None),
        (None, b"x"),
        (MANIFEST_KEY, b"m"),
    ]
    assert latest_records(log) == {b"a": b"2", MANIFEST_KEY: b"m"}


def test_window_and_stateful_snapshots_restore_exactly() -> None:
    op = WindowOperator(
        spec=windows.tumbling("10ms"),
        aggregates=parse({"n": pl.len(), "q": pl.col("v").median()}),
        keys=["k"],
    )
    frame = pl.DataFrame(
        {
            "k": ["a", "b"],
            "v": [1.0, 2.0],
            "_event_time": [1, 2],
            "_partition": [0, 1],
            "_offset": [0, 0],
        }
    )
    op.process(frame, 0.0)
    frames, meta = op.snapshot(1)
    records, parts = encode_chunks("1", 0, 5, frames)
    restored = WindowOperator(
        spec=windows.tumbling("10ms"),
        aggregates=parse({"n": pl.len(), "q": pl.col("v").median()}),
        keys=["k"],
    )
    restored.restore(1, decode_snapshot("1", OpEntry(0, 5, parts, meta), dict(records)), 0.0)
    assert restored.groups is not None and restored.groups["k"].to_list() == ["b"]
    assert restored.watermarks.partitions[1].max_event == 2
    out = restored.close().results
    assert out.select("k", "n", "q").rows() == [("b", 1, pytest.approx(2.0, rel=0.01))]

    stateful = StatefulOperator(
        lambda b, s: (b, b.select("k", pl.col("v").alias("last"))), ["k"], None, "s"
    )
    stateful.process(frame)
    frames, meta = stateful.snapshot(0)
    other = StatefulOperator(stateful.fn, ["k"], None, "s")
    other.restore(0, (frames, meta), 0.0)
    assert other.state[0].rows() == [("a", 1.0)]
    other.restore(0, None, 0.0)
    assert 0 not in other.state


def test_watermark_is_the_minimum_of_active_partitions() -> None:
    marks = Watermarks(idle_timeout_ms=1000)
    marks.observe({0: 100, 1: 50}, now=0.0)
    assert marks.combined(0.5) == 50
    assert marks.advance(0.5) == {0: 50, 1: 50}
    marks.observe({0: 200}, now=1.2)  # partition 1 silent for 1.2 s: idle
    assert marks.combined(1.2) == 200
    assert marks.combined(1.2, busy=frozenset({1})) == 50  # a backlog is never idle
    assert marks.combined(5.0) == 200  # everything idle: the largest wins
    marks.advance(5.0)
    marks.observe({1: 60}, now=5.1)  # partition 1 comes back behind
    assert marks.advance(5.1)[1] == 200  # closed windows stay closed


def test_a_restored_partition_keeps_its_closed_windows_closed() -> None:
    marks = Watermarks(idle_timeout_ms=1000)
    marks.restore(3, max_event=500, closed_through=400, now=0.0)
    assert marks.closed_through() == {3: 400}
    marks.forget(3)
    assert marks.closed_through() == {}
