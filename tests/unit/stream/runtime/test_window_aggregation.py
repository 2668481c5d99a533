"""Windows checked against a naive reference on the same data (Hypothesis-generated).

The reference replays the documented semantics record by record in plain Python
(which windows are closed, which records are late) and computes every aggregate with
plain Polars over the accepted records of each window.  Inputs include out-of-order
records, late records, several partitions, idle partitions and null values.

Windows fed by a repartition topic are checked the same way on a log that several
writers interleave (each owning some source partitions, some going idle), cut into
consumer batches in two different ways and restored from a snapshot half-way: the
results must match the reference, and so each other, whatever the batching and the
wall-clock time.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field

import polars as pl
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from haeryu.stream import windows
from haeryu.stream.api.aggregates import SKETCH_ALPHA, parse
from haeryu.stream.api.windows import Hopping, Session, Tumbling, WindowSpec
from haeryu.stream.columns import CHUNK_ROW
from haeryu.stream.runtime.shuffle_time import WriterProgress
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


# --------------------------------------------------------------------------- repartitioned


@dataclass
class ShuffleLog:
    """One repartition partition's log: data chunks and progress records, in order."""

    entries: list[tuple[str, object]] = field(default_factory=list)  # ("rows", [...]) / ("wm", b)


@st.composite
def shuffled_scenarios(draw: st.DrawFn) -> tuple[WindowSpec, int, ShuffleLog, list[list[int]]]:
    """Several writers, each owning some source partitions, interleave into one partition.

    A writer takes a batch of its partitions' records, writes them as one chunk, then
    writes its progress record; writers step in a random order, and wall-clock time
    moves on so that partitions (and whole writers) go idle.  Returns the log and two
    different ways of cutting it into consumer batches.
    """
    if draw(st.booleans()):
        spec: WindowSpec = windows.tumbling(f"{draw(st.integers(2, 30))}ms")
    else:
        hop = draw(st.integers(1, 10))
        size = hop * draw(st.integers(1, 4)) + draw(st.integers(0, hop - 1))
        spec = windows.hopping(f"{size}ms", every=f"{hop}ms")
    lateness = draw(st.sampled_from([0, 0, 3, 10]))
    n_sources = draw(st.integers(1, 4))
    n_writers = draw(st.integers(1, 3))
    owner = [draw(st.integers(0, n_writers - 1)) for _ in range(n_sources)]
    # Each source partition's event times drift forward at its own pace.
    pace = [draw(st.integers(0, 6)) for _ in range(n_sources)]
    clocks = [0] * n_sources
    progress = [WriterProgress("src", IDLE_MS) for _ in range(n_writers)]
    now = 0.0
    for w in range(n_writers):
        progress[w].partition_count = n_sources
        progress[w].own([s for s in range(n_sources) if owner[s] == w], now)
    log = ShuffleLog()
    for _ in range(draw(st.integers(1, 14))):
        w = draw(st.integers(0, n_writers - 1))
        now += draw(st.sampled_from([0.01, 0.1, 0.6]))  # idle after 1 s without records
        mine = [s for s in range(n_sources) if owner[s] == w]
        rows: list[tuple[int, str, int, float | None]] = []
        if mine and draw(st.integers(0, 4)):  # sometimes a writer has nothing to send
            for _ in range(draw(st.integers(0, 6))):
                s = draw(st.sampled_from(mine))
                clocks[s] = max(clocks[s] + pace[s] + draw(st.integers(-8, 4)), 0)
                value = draw(st.one_of(st.none(), st.integers(-100, 100).map(float)))
                rows.append((s, draw(st.sampled_from("ab")), clocks[s], value))
        if rows:
            log.entries.append(("rows", rows))
            maxima: dict[int, int] = {}
            for s, _, ts, _ in rows:
                maxima[s] = max(maxima.get(s, ts), ts)
            progress[w].observe(maxima, maxima, now)
        log.entries.append(("wm", progress[w].report(now, frozenset())))
    cuts = [
        sorted(set(draw(st.lists(st.integers(1, len(log.entries)), max_size=6)))) for _ in range(2)
    ]
    return spec, lateness, log, cuts


class ShuffleReference:
    """Record by record: a row is late against the watermark just before it in the log.

    The watermark is the minimum over active source partitions of the largest event
    time each reported; one not reported yet, or active with no time, holds it back;
    when all are idle the largest wins.
    """

    def __init__(self, spec: WindowSpec, lateness: int) -> None:
        self.windows = Reference(spec, lateness)
        self.marks: dict[int, int | None] = {}
        self.idle: dict[int, bool] = {}
        self.count = 0
        self.closed: int | None = None
        self.emitted: dict[tuple[int, int], list[Record]] = {}
        self.late: list[Record] = []
        self.source_mark: dict[int, int] = {}  # what each source reported, for the check
        self.origin: dict[int, int] = {}
        self.was_idle: set[int] = set()

    def rows(self, offset: int, rows: list[tuple[int, str, int, float | None]]) -> None:
        lateness = self.windows.lateness
        for i, (s, key, ts, value) in enumerate(rows):
            record = Record(0, key, ts, value, offset * 2**20 + i)
            self.origin[record.offset] = s
            wins = self.windows.windows_of(ts)
            kept = [w for w in wins if self.closed is None or w[1] + lateness > self.closed]
            if not kept:
                self.late.append(record)
                # Late only if its own source partition had already passed its windows
                # (or went idle once, which let the others' watermark through).
                if s not in self.was_idle:
                    assert max(w[1] for w in wins) + lateness <= self.source_mark[s]
            for start, end in kept:
                self.windows.open.setdefault((0, key, start, end), []).append(record)

    def progress(self, report: bytes) -> None:
        body = json.loads(report[4:])
        self.count = body["n"]
        for s, (mark, idle) in body["p"].items():
            old = self.marks.get(int(s))
            if old is not None and (mark is None or mark < old):
                mark = old
            self.marks[int(s)], self.idle[int(s)] = mark, bool(idle)
            if idle:
                self.was_idle.add(int(s))
            if mark is not None:
                self.source_mark[int(s)] = mark
        if any(s not in self.marks for s in range(self.count)):
            return
        active = [m for s, m in self.marks.items() if not self.idle[s]]
        if active and None in active:
            return
        known = [m for m in self.marks.values() if m is not None]
        mark = min(active) if active else (max(known) if known else None)  # type: ignore[type-var]
        if mark is not None and (self.closed is None or mark > self.closed):
            self.closed = mark
        for window in sorted(self.windows.open):
            if self.closed is not None and window[3] + self.windows.lateness <= self.closed:
                self.emitted[(window[1], window[2])] = self.windows.open.pop(window)  # type: ignore[index]

    def finish(self) -> None:
        for window in sorted(self.windows.open):
            self.emitted[(window[1], window[2])] = self.windows.open.pop(window)  # type: ignore[index]


def shuffled_batches(log: ShuffleLog, cuts: list[int]) -> list[tuple[pl.DataFrame, list]]:
    """Consumer batches: the rows (chunk offset, place in chunk) and progress records."""
    out = []
    bounds = [0, *cuts, len(log.entries)]
    for a, b in itertools.pairwise(bounds):
        records: list[Record] = []
        places: list[int] = []
        progress = []
        for offset in range(a, b):
            kind, payload = log.entries[offset]
            if kind == "wm":
                progress.append((0, offset, payload))
                continue
            for i, (_, key, ts, value) in enumerate(payload):  # type: ignore[attr-defined]
                records.append(Record(0, key, ts, value, offset))
                places.append(i)
        frame = frame_of(records).with_columns(pl.Series(CHUNK_ROW, places, dtype=pl.UInt32))
        out.append((frame, progress))
    return out


def run_shuffled(
    spec: WindowSpec, lateness: int, log: ShuffleLog, cuts: list[int], *, restart_at: int = -1
) -> tuple[dict[tuple, dict], list[tuple[int, int]]]:
    """Feed the log to a shuffled operator; optionally snapshot and restore mid-way."""
    op = WindowOperator(
        spec=spec,
        aggregates=parse(AGGREGATES),
        keys=["k"],
        allowed_lateness_ms=lateness,
        idle_timeout_ms=IDLE_MS,
        shuffled=True,
    )
    results: dict[tuple, dict] = {}
    late: list[tuple[int, int]] = []

    def collect(frame: pl.DataFrame) -> None:
        for row in frame.with_columns(
            pl.col("window_start", "window_end").dt.epoch("ms")
        ).iter_rows(named=True):
            window = (row["k"], row["window_start"])
            assert window not in results, "a window was emitted twice"
            results[window] = row

    for i, (frame, progress) in enumerate(shuffled_batches(log, cuts)):
        if i == restart_at:
            state = op.snapshot(0)
            op = WindowOperator(
                spec=spec,
                aggregates=parse(AGGREGATES),
                keys=["k"],
                allowed_lateness_ms=lateness,
                idle_timeout_ms=IDLE_MS,
                shuffled=True,
            )
            op.restore(0, state, 99.0)
        # wall-clock time is irrelevant to a shuffled operator: pass nonsense
        output = op.process(frame, 1000.0 - i * 7.5, frozenset(), progress)
        collect(output.results)
        late += list(zip(output.late["_offset"], output.late[CHUNK_ROW], strict=True))
    collect(op.close().results)
    return results, sorted(late)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shuffled_scenarios(), st.integers(0, 3))
def test_repartitioned_windows_match_reference_whatever_the_batching(
    scenario: tuple[WindowSpec, int, ShuffleLog, list[list[int]]], restart_at: int
) -> None:
    spec, lateness, log, cuts = scenario
    reference = ShuffleReference(spec, lateness)
    for offset, (kind, payload) in enumerate(log.entries):
        if kind == "rows":
            reference.rows(offset, payload)  # type: ignore[arg-type]
        else:
            reference.progress(payload)  # type: ignore[arg-type]
    reference.finish()
    first, first_late = run_shuffled(spec, lateness, log, cuts[0])
    # Other batch boundaries, other wall-clock times, a restore from a snapshot half-way:
    # the same windows with the same content, the same late records.
    second, second_late = run_shuffled(spec, lateness, log, cuts[1], restart_at=restart_at)
    want_late = sorted((r.offset >> 20, r.offset & (2**20 - 1)) for r in reference.late)
    assert first_late == want_late
    assert second_late == want_late
    assert sorted(first) == sorted(reference.emitted)
    assert sorted(second) == sorted(reference.emitted)
    for window, records in reference.emitted.items():
        want = expected_row(records)
        check_row(first[window], want)
        check_row(second[window], want)
    event(f"late records: {bool(want_late)}")
    event(f"writers idle at some point: {any(b'1]' in p for k, p in log.entries if k == 'wm')}")  # type: ignore[operator]
