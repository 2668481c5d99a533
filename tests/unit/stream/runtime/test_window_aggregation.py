"""Windows checked against a naive reference on the same data (Hypothesis-generated).

The reference replays the documented semantics record by record in plain Python
(which windows are closed, which records are late) and computes every aggregate with
plain Polars over the accepted records of each window.  Inputs include out-of-order
records, late records, several partitions, idle partitions and null values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from haeryu.stream import windows
from haeryu.stream.api.aggregates import SKETCH_ALPHA, parse
from haeryu.stream.api.windows import Hopping, Session, Tumbling, WindowSpec
from haeryu.stream.runtime.window_aggregation import WindowOperator

AGGREGATES = {
    "n": pl.len(),
    "cnt": pl.col("v").count(),
    "total": pl.col("v").sum(),
    "lo": pl.col("v").min(),
    "hi": pl.col("v").max(),
    "avg": pl.col("v").mean(),
    "sd": pl.col("v").std(),
    "var0": pl.col("v").var(ddof=0),
    "head": pl.col("v").first(),
    "tail": pl.col("v").last(),
    "p90": pl.col("v").quantile(0.9),
    "med": pl.col("v").median(),
}
IDLE_MS = 1000


@dataclass
class Record:
    partition: int
    key: str
    ts: int
    value: float | None
    offset: int = 0


@dataclass
class Reference:
    """The documented window semantics, one record at a time, no vectorisation."""

    spec: WindowSpec
    lateness: int
    max_event: dict[int, int] = field(default_factory=dict)
    last_seen: dict[int, float] = field(default_factory=dict)
    closed: dict[int, int] = field(default_factory=dict)
    open: dict[tuple[int, str, int, int], list[Record]] = field(default_factory=dict)

    def windows_of(self, ts: int) -> list[tuple[int, int]]:
        if isinstance(self.spec, Tumbling):
            start = (ts // self.spec.size_ms) * self.spec.size_ms
            return [(start, start + self.spec.size_ms)]
        assert isinstance(self.spec, Hopping)
        out = []
        start = (ts // self.spec.hop_ms) * self.spec.hop_ms
        while start + self.spec.size_ms > ts:
            out.append((start, start + self.spec.size_ms))
            start -= self.spec.hop_ms
        return out

    def is_closed(self, partition: int, end: int) -> bool:
        return partition in self.closed and end + self.lateness <= self.closed[partition]

    def batch(self, records: list[Record], now: float) -> tuple[list[tuple], list[Record]]:
        late: list[Record] = []
        if isinstance(self.spec, Session):
            late = self._sessions(records)
        else:
            for r in records:
                kept = [w for w in self.windows_of(r.ts) if not self.is_closed(r.partition, w[1])]
                if not kept:
                    late.append(r)
                for start, end in kept:
                    self.open.setdefault((r.partition, r.key, start, end), []).append(r)
        for r in records:
            self.max_event[r.partition] = max(self.max_event.get(r.partition, r.ts), r.ts)
            self.last_seen[r.partition] = now
        active = [m for p, m in self.max_event.items() if now - self.last_seen[p] < IDLE_MS / 1000]
        if self.max_event:
            watermark = min(active) if active else max(self.max_event.values())
            for p in self.max_event:
                self.closed[p] = max(self.closed.get(p, watermark), watermark)
        emitted = []
        for window in sorted(self.open):
            if self.is_closed(window[0], window[3]):
                emitted.append((window, self.open.pop(window)))
        return emitted, late

    def _sessions(self, records: list[Record]) -> list[Record]:
        assert isinstance(self.spec, Session)
        gap = self.spec.gap_ms
        late: list[Record] = []
        by_key: dict[tuple[int, str], list[Record]] = {}
        for r in records:
            by_key.setdefault((r.partition, r.key), []).append(r)
        for (p, k), new in by_key.items():
            items = [
                (s, e, True, recs)
                for (pp, kk, s, e), recs in self.open.items()
                if (pp, kk) == (p, k)
            ]
            for s, e, _, _ in items:
                del self.open[(p, k, s, e)]
            olds = [(s, e) for s, e, _, _ in items]
            for r in new:
                touches = any(r.ts <= e and r.ts + gap >= s for s, e in olds)
                if self.is_closed(p, r.ts + gap) and not touches:
                    late.append(r)
                else:
                    items.append((r.ts, r.ts + gap, False, [r]))
            items.sort(key=lambda item: item[0])
            sessions: list[list] = []
            for s, e, old, recs in items:
                if sessions and s <= sessions[-1][1]:
                    last = sessions[-1]
                    last[1] = max(last[1], e)
                    last[2] = last[2] or old
                    last[3] = last[3] + recs
                else:
                    sessions.append([s, e, old, list(recs)])
            for s, e, old, recs in sessions:
                if not old and self.is_closed(p, e):
                    late.extend(recs)
                else:
                    self.open[(p, k, s, e)] = recs
        return late


def expected_row(records: list[Record]) -> dict[str, float | int | None]:
    frame = pl.DataFrame(
        {
            "v": [r.value for r in records],
            "ts": [r.ts for r in records],
            "o": [r.offset for r in records],
        },
        schema={"v": pl.Float64, "ts": pl.Int64, "o": pl.Int64},
    ).sort("ts", "o")
    row = frame.select(
        n=pl.len(),
        cnt=pl.col("v").count(),
        total=pl.col("v").sum(),
        lo=pl.col("v").min(),
        hi=pl.col("v").max(),
        avg=pl.col("v").mean(),
        sd=pl.col("v").std(),
        var0=pl.col("v").var(ddof=0),
        head=pl.col("v").first(),
        tail=pl.col("v").last(),
    ).row(0, named=True)
    values = sorted(v for v in frame["v"].to_list() if v is not None)
    for name, q in (("p90", 0.9), ("med", 0.5)):
        row[name] = values[round(q * (len(values) - 1))] if values else None
    return row


def close(a: float | int | None, b: float | int | None, *, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-6)


def check_row(got: dict, want: dict) -> None:
    for name in ("n", "cnt", "lo", "hi", "head", "tail"):
        assert got[name] == want[name], name
    for name in ("total", "avg", "sd", "var0"):
        assert close(got[name], want[name], rel=1e-7), (name, got[name], want[name])
    for name in ("p90", "med"):
        if want[name] is None:
            assert got[name] is None
        else:
            assert abs(got[name] - want[name]) <= SKETCH_ALPHA * abs(want[name]) * 1.0001 + 1e-9


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[WindowSpec, int, list[tuple[list[Record], float]]]:
    kind = draw(st.sampled_from(["tumbling", "hopping", "session"]))
    if kind == "tumbling":
        spec: WindowSpec = windows.tumbling(f"{draw(st.integers(2, 30))}ms")
    elif kind == "hopping":
        hop = draw(st.integers(1, 10))
        size = hop * draw(st.integers(1, 4)) + draw(st.integers(0, hop - 1))
        spec = windows.hopping(f"{size}ms", every=f"{hop}ms")
    else:
        spec = windows.session(f"{draw(st.integers(1, 15))}ms")
    lateness = draw(st.sampled_from([0, 0, 3, 10]))
    n_batches = draw(st.integers(1, 6))
    batches = []
    now = 0.0
    offsets = [0, 0, 0]
    clock = 0
    for _ in range(n_batches):
        size = draw(st.integers(0, 12))
        records = []
        for _ in range(size):
            partition = draw(st.integers(0, 2))
            clock += draw(st.integers(-8, 10))  # drifts forward, sometimes backwards
            value = draw(
                st.one_of(
                    st.none(),
                    st.floats(-1e3, 1e3, allow_nan=False).filter(lambda x: x == 0 or abs(x) > 1e-6),
                )
            )
            records.append(
                Record(
                    partition,
                    draw(st.sampled_from("abc")),
                    max(clock, 0),
                    value,
                    offsets[partition],
                )
            )
            offsets[partition] += 1
        now += draw(st.sampled_from([0.01, 0.1, 2.0]))  # 2 s > idle timeout: partitions go idle
        batches.append((records, now))
    return spec, lateness, batches


def frame_of(records: list[Record]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "k": [r.key for r in records],
            "v": [r.value for r in records],
            "_event_time": [r.ts for r in records],
            "_partition": [r.partition for r in records],
            "_offset": [r.offset for r in records],
        },
        schema={
            "k": pl.String,
            "v": pl.Float64,
            "_event_time": pl.Int64,
            "_partition": pl.Int32,
            "_offset": pl.Int64,
        },
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_windows_match_reference(scenario: tuple[WindowSpec, int, list]) -> None:
    spec, lateness, batches = scenario
    op = WindowOperator(
        spec=spec,
        aggregates=parse(AGGREGATES),
        keys=["k"],
        allowed_lateness_ms=lateness,
        idle_timeout_ms=IDLE_MS,
    )
    reference = Reference(spec, lateness)
    for records, now in batches:
        output = op.process(frame_of(records), now)
        want_windows, want_late = reference.batch(records, now)
        got = {
            (row["_partition"], row["k"], row["window_start"], row["window_end"]): row
            for row in output.results.with_columns(
                pl.col("window_start", "window_end").dt.epoch("ms")
            ).iter_rows(named=True)
        }
        assert sorted(got) == [w for w, _ in want_windows]
        for window, recs in want_windows:
            check_row(got[window], expected_row(recs))
        event(f"late records: {bool(want_late)}")
        event(f"windows emitted: {bool(want_windows)}")
        event(f"spec: {type(spec).__name__}")
        got_late = sorted(zip(output.late["_partition"], output.late["_offset"], strict=True))
        assert got_late == sorted((r.partition, r.offset) for r in want_late)


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_update_mode_ends_with_the_close_result(scenario: tuple[WindowSpec, int, list]) -> None:
    spec, lateness, batches = scenario
    kwargs = dict(
        spec=spec,
        aggregates=parse(AGGREGATES),
        keys=["k"],
        allowed_lateness_ms=lateness,
        idle_timeout_ms=IDLE_MS,
    )
    on_close = WindowOperator(**kwargs, emit="close")  # type: ignore[arg-type]
    on_update = WindowOperator(**kwargs, emit="update")  # type: ignore[arg-type]
    latest: dict[tuple, dict] = {}
    finals: dict[tuple, dict] = {}
    for records, now in batches:
        frame = frame_of(records)
        for row in on_update.process(frame, now).results.iter_rows(named=True):
            latest[(row["_partition"], row["k"], row["window_start"])] = row
        for row in on_close.process(frame, now).results.iter_rows(named=True):
            finals[(row["_partition"], row["k"], row["window_start"])] = row
    for window, row in finals.items():
        assert window in latest
        update = latest[window]
        assert update["window_end"] == row["window_end"]
        for name in AGGREGATES:
            assert close(update[name], row[name]), name


def test_restore_continues_where_the_snapshot_left_off() -> None:
    kwargs = dict(
        spec=windows.tumbling("10ms"),
        aggregates=parse({"n": pl.len(), "s": pl.col("v").sum()}),
        keys=["k"],
    )
    first = WindowOperator(**kwargs)  # type: ignore[arg-type]
    first.process(frame_of([Record(0, "a", 1, 1.0, 0), Record(1, "a", 3, 2.0, 0)]), 0.0)
    snapshots = {p: first.snapshot(p) for p in (0, 1)}
    second = WindowOperator(**kwargs)  # type: ignore[arg-type]
    for p, snap in snapshots.items():
        second.restore(p, snap, 0.0)
    out = second.process(frame_of([Record(0, "a", 12, 5.0, 1), Record(1, "a", 15, 1.0, 1)]), 0.1)
    rows = sorted(out.results.select("_partition", "n", "s").rows())
    assert rows == [(0, 1, 1.0), (1, 1, 2.0)]
