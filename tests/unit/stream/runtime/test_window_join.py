"""The windowed stream-stream join against a plain Polars join, lateness and restore."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.stream import Pipeline, run_local, windows
from haeryu.stream.api.windows import Hopping, Tumbling
from haeryu.stream.columns import EVENT_TIME, OFFSET, PARTITION
from haeryu.stream.errors import PlanError
from haeryu.stream.runtime.window_join import JOIN_SIDE, WindowJoinOperator
from haeryu.stream.state.changelog import OpEntry, decode_snapshot, encode_chunks, latest_records

SPECS = [Tumbling(10_000), Hopping(10_000, 5_000)]


def side_frame(rows: list[tuple[int, int, int]], first_offset: int = 0) -> pl.DataFrame:
    """Records (partition, key, time) with a payload naming the record."""
    return pl.DataFrame(
        {
            "k": [k for _, k, _ in rows],
            "v": [f"{first_offset + i}" for i in range(len(rows))],
            PARTITION: [p for p, _, _ in rows],
            OFFSET: list(range(first_offset, first_offset + len(rows))),
            EVENT_TIME: [t for _, _, t in rows],
        },
        schema={
            "k": pl.Int64,
            "v": pl.String,
            PARTITION: pl.Int32,
            OFFSET: pl.Int64,
            EVENT_TIME: pl.Int64,
        },
    )


def reference(
    left: pl.DataFrame, right: pl.DataFrame, spec: Tumbling | Hopping, how: str
) -> pl.DataFrame:
    """Inner (or semi) join on partition, key and window, computed in one go."""

    def windowed(frame: pl.DataFrame) -> pl.DataFrame:
        if isinstance(spec, Tumbling):
            return frame.with_columns(
                (pl.col(EVENT_TIME) // spec.size_ms * spec.size_ms).alias("ws")
            )
        last = pl.col(EVENT_TIME) // spec.hop_ms * spec.hop_ms
        starts = pl.int_ranges(last - spec.size_ms + spec.hop_ms, last + 1, spec.hop_ms)
        return frame.with_columns(starts.alias("ws")).explode("ws")

    on = [PARTITION, "ws", "k"]
    lw, rw = windowed(left), windowed(right).select(*on, pl.col("v").alias("v_right"))
    if how == "semi":
        return lw.join(rw, on=on, how="semi").select("k", "v", "ws").sort("ws", "k", "v")
    return lw.join(rw, on=on).select("k", "v", "v_right", "ws").sort("ws", "k", "v", "v_right")


def as_compared(results: pl.DataFrame, how: str) -> pl.DataFrame:
    cols = ["k", "v", "ws"] if how == "semi" else ["k", "v", "v_right", "ws"]
    return results.with_columns(pl.col("window_start").dt.epoch("ms").alias("ws")).select(cols)


def feed(
    op: WindowJoinOperator, steps: list[tuple[int, pl.DataFrame]], now: float = 0.0
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    results, late = [], []
    for side, frame in steps:
        now += 0.001
        out = op.process(frame, now, side=side)  # type: ignore[arg-type]
        results.append(out.results)
        late.append(out.late)
    return results, late


def concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    present = [f for f in frames if f.height]
    return pl.concat(present) if present else pl.DataFrame()


records = st.lists(
    st.tuples(st.integers(0, 1), st.integers(0, 4), st.integers(0, 60_000)), max_size=60
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, list[tuple[int, pl.DataFrame]]]:
    """Both sides in event-time order, cut into batches and interleaved at random.

    Each side in time order means no record is ever late (the join's watermark is the
    minimum of the two sides), so the result must equal the one-shot join.
    """
    left = sorted(draw(records), key=lambda r: r[2])
    right = sorted(draw(records), key=lambda r: r[2])
    steps: list[tuple[int, pl.DataFrame]] = []
    cursors = [0, 0]
    sides = [left, right]
    while cursors[0] < len(left) or cursors[1] < len(right):
        side = draw(st.sampled_from([s for s in (0, 1) if cursors[s] < len(sides[s])]))
        size = draw(st.integers(1, 15))
        chunk = sides[side][cursors[side] : cursors[side] + size]
        steps.append((side, side_frame(chunk, first_offset=cursors[side])))
        cursors[side] += len(chunk)
    return side_frame(left), side_frame(right), steps


@settings(max_examples=60, deadline=None)
@given(
    scenario=scenarios(),
    spec=st.sampled_from(SPECS),
    how=st.sampled_from(["inner", "semi"]),
)
def test_join_equals_a_polars_join_of_the_whole_input(
    scenario: tuple[pl.DataFrame, pl.DataFrame, list[tuple[int, pl.DataFrame]]],
    spec: Tumbling | Hopping,
    how: str,
) -> None:
    left, right, steps = scenario
    op = WindowJoinOperator(spec=spec, left_on=["k"], right_on=["k"], how=how)  # type: ignore[arg-type]
    results, late = feed(op, steps)
    results.append(op.close().results)
    assert concat(late).height == 0
    got = concat(results)
    expected = reference(left, right, spec, how)
    if expected.height == 0:
        assert got.height == 0
        return
    assert_frame_equal_unordered(as_compared(got, how), expected)
    # Every result has its own replay-stable id.
    assert got["__id"].n_unique() == got.height
    # State is bounded by the watermark: nothing is left once every window closed.
    assert all(b is None or b.height == 0 for b in op.buffers)


def assert_frame_equal_unordered(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert got.columns == expected.columns
    assert sorted(got.rows()) == sorted(expected.rows())


def test_a_record_whose_window_closed_goes_to_the_late_output() -> None:
    op = WindowJoinOperator(spec=Tumbling(10_000), left_on=["k"], right_on=["k"])
    feed(op, [(0, side_frame([(0, 1, 1_000)])), (1, side_frame([(0, 1, 2_000)]))])
    # Both sides reach 25 s: windows [0, 10 s) and [10 s, 20 s) close.
    results, _ = feed(
        op, [(0, side_frame([(0, 2, 25_000)], 1)), (1, side_frame([(0, 2, 25_000)], 1))]
    )
    emitted = concat(results)
    assert emitted.select("k", "v", "v_right").rows() == [(1, "0", "0")]
    # A left record of the closed first window: late, kept whole, tagged with its side.
    _, late = feed(op, [(0, side_frame([(0, 1, 5_000)], 2))])
    late_rows = concat(late)
    assert late_rows.select("k", "v", JOIN_SIDE).rows() == [(1, "2", "left")]
    # The late record joined nothing: the second window's pair is all that remains.
    rest = op.close_all()
    assert rest.select("k", "v", "v_right").rows() == [(2, "1", "1")]


def test_allowed_lateness_keeps_a_window_open() -> None:
    op = WindowJoinOperator(
        spec=Tumbling(10_000), left_on=["k"], right_on=["k"], allowed_lateness_ms=20_000
    )
    feed(
        op,
        [
            (0, side_frame([(0, 1, 1_000), (0, 2, 25_000)])),
            (1, side_frame([(0, 2, 25_000)])),
        ],
    )
    _, late = feed(op, [(1, side_frame([(0, 1, 5_000)], 1))])
    assert concat(late).height == 0
    out = op.close_all()
    assert sorted(out.select("k", "v", "v_right").rows()) == [(1, "0", "1"), (2, "1", "0")]


def test_a_side_not_heard_from_holds_windows_open_until_it_is_idle() -> None:
    op = WindowJoinOperator(
        spec=Tumbling(10_000), left_on=["k"], right_on=["k"], idle_timeout_ms=5_000
    )
    first = op.process(side_frame([(0, 1, 1_000), (0, 1, 40_000)]), now=0.0)
    assert first.results.height == 0 and op.buffers[0] is not None
    assert op.buffers[0].height == 2  # nothing closed: the right side may still come
    # The right side stays silent past the idle timeout: windows close, nothing joins,
    # and the left rows of closed windows are dropped from state.
    op.tick(now=6.0)
    assert op.buffers[0].height == 1


@settings(max_examples=40, deadline=None)
@given(
    scenario=scenarios(),
    how=st.sampled_from(["inner", "semi"]),
    cut=st.integers(0, 100),
    per_side=st.booleans(),
)
def test_restore_from_a_changelog_snapshot_gives_the_uninterrupted_result(
    scenario: tuple[pl.DataFrame, pl.DataFrame, list[tuple[int, pl.DataFrame]]],
    how: str,
    cut: int,
    per_side: bool,
) -> None:
    """``per_side``: the sides come from two topics, each checkpointed with its own."""
    _, _, steps = scenario
    spec = Hopping(10_000, 5_000)

    def make() -> WindowJoinOperator:
        return WindowJoinOperator(spec=spec, left_on=["k"], right_on=["k"], how=how)  # type: ignore[arg-type]

    whole = make()
    expected, _ = feed(whole, steps)
    expected.append(whole.close_all())

    k = cut % (len(steps) + 1)
    before = make()
    got, _ = feed(before, steps[:k])
    # Checkpoint every partition through the changelog codec, then a new worker
    # restores it and reads on from the same position.
    after = make()
    pairs: list[tuple[Any, Any]] = (
        [(before.side(0), after.side(0)), (before.side(1), after.side(1))]
        if per_side
        else [(before, after)]
    )
    for old, new in pairs:
        for partition in (0, 1):
            frames, meta = old.snapshot(partition)
            encoded, parts = encode_chunks("j", 0, 7, frames)
            records = latest_records(encoded)  # type: ignore[arg-type]
            new.restore(partition, decode_snapshot("j", OpEntry(0, 7, parts, meta), records), 0.0)
    rest, _ = feed(after, steps[k:], now=1.0)
    got += rest
    got.append(after.close_all())
    assert sorted(concat(got).drop("window_end", strict=False).rows()) == sorted(
        concat(expected).drop("window_end", strict=False).rows()
    )


def test_each_side_is_dirty_and_saved_on_its_own() -> None:
    op = WindowJoinOperator(spec=Tumbling(10_000), left_on=["k"], right_on=["k"])
    op.process(side_frame([(1, 1, 1_000)]), 0.0, side=0)
    left, right = op.side(0), op.side(1)
    # The left batch registered the right side of partition 1 as expected (progress).
    assert left.dirty == {1} and right.dirty == {1}
    frames, meta = left.snapshot(1)
    assert set(frames) == {"left"} and frames["left"] is not None
    assert set(meta) == {"left"}
    assert frames["left"].height == 1
    left.dirty.discard(1)
    right.forget(1)
    assert op.dirty == set()  # nothing left to save for partition 1 of either side
    assert op.buffers[0] is not None and op.buffers[0].height == 1  # the left rows stay


def test_join_window_in_a_pipeline_with_late_side_output() -> None:
    p = Pipeline("orders")
    orders = p.source("orders", timestamp="t", partitioned_by="customer")
    payments = p.source("payments", timestamp="t", partitioned_by="customer")
    paid = orders.join_window(payments, on="customer", window=windows.tumbling("10s"), how="inner")
    paid.select("customer", "order", "amount", "window_start").to_topic("paid")
    paid.late().to_topic("late")
    out = run_local(
        p,
        {
            "orders": [
                {"customer": "a", "order": 1, "t": 1_000},
                {"customer": "b", "order": 2, "t": 2_000},
                {"customer": "a", "order": 3, "t": 31_000},
            ],
            "payments": [
                {"customer": "a", "amount": 10, "t": 4_000},
                {"customer": "b", "amount": 20, "t": 12_000},
                {"customer": "a", "amount": 30, "t": 32_000},
                {"customer": "b", "amount": 40, "t": 3_000},
            ],
        },
        batch_size=3,
    )
    # b paid in another window; b's payment at 3 s came after both sides passed 30 s.
    assert out.topic("paid").select("customer", "order", "amount").rows() == [
        ("a", 1, 10),
        ("a", 3, 30),
    ]
    late = out.topic("late")
    assert late.select("customer", "amount", JOIN_SIDE).rows() == [("b", 40, "right")]


def test_join_window_rejects_what_it_cannot_do() -> None:
    p = Pipeline("bad")
    left = p.source("l")
    right = p.source("r")
    with pytest.raises(PlanError, match="tumbling or hopping"):
        left.join_window(right, on="k", window=windows.session("10s"))
    with pytest.raises(PlanError, match="itself"):
        left.join_window(left, on="k", window=windows.tumbling("10s"))
    with pytest.raises(PlanError, match="key columns"):
        left.join_window(right, left_on=("a", "b"), right_on="a", window=windows.tumbling("1s"))
    with pytest.raises(PlanError, match="same pipeline"):
        left.join_window(Pipeline("other").source("r"), on="k", window=windows.tumbling("1s"))
