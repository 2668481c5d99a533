"""The windowed stream-stream join: two keyed inputs joined per event-time window.

As Flink's window join: both sides are assigned to tumbling or hopping windows by event
time and buffered per window; when the watermark passes a window's end (plus the
allowed lateness) the window's rows of the two sides are joined on the keys -- all at
once, vectorized -- emitted, and dropped from state.  State is therefore bounded by the
watermark: only windows that can still receive records are held.

``how="inner"`` emits one row per matching (left, right) pair; ``how="semi"`` emits each
left row once when its window holds at least one right row with its key (NEXMark q8's
"persons who opened an auction in the same window").

Time and lateness follow the window aggregation's rules (:mod:`.watermarks`): each input
partition of each side has its own watermark; the join's watermark is the minimum over
the active ones, and a side that has not delivered anything yet in a partition the
other side has (and is not idle) holds it back, so a window never closes before both
sides could fill it.  A record whose window already closed in its partition is late and
goes to the late side output, tagged with its side (:data:`JOIN_SIDE`).  State is kept
per input partition: partition ``p`` of the left input joins partition ``p`` of the
right, so the inputs must be co-partitioned by the join key (same partition count and
partitioner; a join behind a repartition topic is refused for now).

Every result carries a replay-stable id (operator, partition, window start and the
offsets of the rows it joined), so a replay after a crash is suppressed like a
window's result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import polars as pl

from haeryu.stream.api.choices import WindowJoinHow
from haeryu.stream.api.windows import WINDOW_END, WINDOW_START, Hopping, Tumbling
from haeryu.stream.columns import (
    ARRIVAL,
    EVENT_MS,
    EVENT_TIME,
    INTERNAL_PREFIX,
    METADATA,
    OFFSET,
    PARTITION,
    ROW_ID,
    ROW_NUMBER,
    STATE_PARTITION,
    WINDOW_END_MS,
    WINDOW_START_MS,
)
from haeryu.stream.errors import PlanError
from haeryu.stream.runtime.operator import OperatorOutput, Progress, Snapshot
from haeryu.stream.runtime.watermarks import PartitionTime, Watermarks

Side = Literal[0, 1]

JOIN_SIDE = "_join_side"
"""Column of a join's late records: ``"left"`` or ``"right"``."""

_DATETIME = pl.Datetime("ms", "UTC")
_END_OF_TIME = 2**62
_SIDES = ("left", "right")
# Columns the operator adds to buffered rows: partition, window start/end, offset.
_P, _WS, _WE, _O = STATE_PARTITION, WINDOW_START_MS, WINDOW_END_MS, ARRIVAL
_T, _R = EVENT_MS, ROW_NUMBER
_O_RIGHT = f"{INTERNAL_PREFIX}o_right"  # the right row's offset, in an inner join's result
_OPEN, _CLOSING = f"{INTERNAL_PREFIX}open", f"{INTERNAL_PREFIX}closing"


class WindowJoinOperator:
    """Join two keyed streams per event-time window; emit when a window closes.

    Parameters
    ----------
    spec
        Tumbling or hopping windows (sessions are per key and side: not joinable).
    left_on, right_on
        Key columns of each side, matched pairwise.
    how
        ``"inner"`` or ``"semi"``.
    allowed_lateness_ms
        How long after a window's end records still join it.
    idle_timeout_ms
        Wall-clock time after which a silent partition stops holding the watermark.
    name
        Operator id, part of each result's identity.
    suffix
        Appended to right columns whose names the left side already uses.

    Notes
    -----
    Not thread-safe; one worker owns it.
    """

    def __init__(
        self,
        *,
        spec: Tumbling | Hopping,
        left_on: Sequence[str],
        right_on: Sequence[str],
        how: WindowJoinHow = "inner",
        allowed_lateness_ms: int = 0,
        idle_timeout_ms: int = 10_000,
        name: str = "join",
        suffix: str = "_right",
    ) -> None:
        if not isinstance(spec, Tumbling | Hopping):
            raise PlanError("a window join needs tumbling or hopping windows")
        if len(left_on) != len(right_on) or not left_on:
            raise PlanError("join_window: give as many right keys as left keys (at least one)")
        if how not in ("inner", "semi"):
            raise PlanError("join_window: how must be 'inner' or 'semi'")
        self.spec = spec
        self.on = (list(left_on), list(right_on))
        self.how = how
        self.lateness = allowed_lateness_ms
        self.idle = idle_timeout_ms / 1000.0
        self.name = name
        self.suffix = suffix
        # Progress of side s in partition p lives under the key 2p + s.
        self.watermarks = Watermarks(idle_timeout_ms)
        self.buffers: list[pl.DataFrame | None] = [None, None]
        self.dirty: set[int] = set()
        # The same, per side: when the sides come from two topics, each side's state is
        # checkpointed with its own topic (see :meth:`side`).
        self.side_dirty: tuple[set[int], set[int]] = (set(), set())
        self._result_schema: pl.Schema | None = None

    # ------------------------------------------------------------------ processing

    def process(
        self,
        frame: pl.DataFrame,
        now: float,
        busy: frozenset[int] = frozenset(),
        progress: Progress = (),
        *,
        side: Side = 0,
    ) -> OperatorOutput:
        """Buffer a batch of one side (``0`` left, ``1`` right); close what time allows.

        ``busy`` holds the progress keys (``2 * partition + side``) of the partitions of
        either side with records still waiting to be read: they are never idle, so a
        side the consumer has not caught up on cannot let windows close early.
        """
        late = frame.clear()
        if frame.width:
            rows, late_rows = self._split_late(side, self._prepare(side, frame))
            if late_rows is not None:
                late = frame.filter(pl.int_range(pl.len(), dtype=pl.UInt32).is_in(late_rows))
            buffered = self.buffers[side]
            if buffered is None or buffered.height == 0:
                self.buffers[side] = rows
            elif rows.height:
                self.buffers[side] = pl.concat([buffered, rows], how="vertical_relaxed")
            if frame.height:
                self._observe(side, frame, now)
        results = self._close(self._advance(now, busy))
        if late.height:
            late = late.with_columns(pl.lit(_SIDES[side]).alias(JOIN_SIDE))
        return OperatorOutput(results, late)

    def tick(self, now: float, busy: frozenset[int] = frozenset()) -> OperatorOutput:
        """No records: let windows close as time passes (idle partitions)."""
        return OperatorOutput(self._close(self._advance(now, busy)), pl.DataFrame())

    def close(self) -> OperatorOutput:
        """End of input: close every open window and return the results."""
        return OperatorOutput(self.close_all(), pl.DataFrame())

    def closed_through(self) -> dict[int, int]:
        """Event time up to which each partition's windows are closed (both sides)."""
        out: dict[int, int] = {}
        for key, state in self.watermarks.partitions.items():
            if state.closed_through is not None:
                p = key // 2
                out[p] = min(out.get(p, state.closed_through), state.closed_through)
        return out

    def close_all(self) -> pl.DataFrame:
        """End of input: close every open window and return the results."""
        partitions = {key // 2 for key in self.watermarks.partitions}
        for buffer in self.buffers:
            if buffer is not None and buffer.height:
                partitions.update(buffer[_P].unique().to_list())
        for key in [2 * p + s for p in partitions for s in (0, 1)]:
            self.watermarks.restore(key, _END_OF_TIME, _END_OF_TIME, 0.0)
        return self._close(dict.fromkeys(partitions, _END_OF_TIME))

    def _prepare(self, side: Side, frame: pl.DataFrame) -> pl.DataFrame:
        """Payload columns plus partition, window bounds and offset (one row per window)."""
        partition = (
            pl.col(PARTITION).cast(pl.Int32) if PARTITION in frame.columns else pl.lit(0, pl.Int32)
        )
        sequence = (
            pl.col(OFFSET).cast(pl.Int64)
            if OFFSET in frame.columns
            else pl.int_range(pl.len(), dtype=pl.Int64)
        )
        time = pl.col(EVENT_TIME).cast(pl.Int64)
        payload = [c for c in frame.columns if c not in METADATA]
        missing = [c for c in self.on[side] if c not in frame.columns]
        if missing:
            raise PlanError(
                f"join {self.name}: {_SIDES[side]} side has no column {missing[0]!r} "
                f"(columns: {', '.join(frame.columns)})"
            )
        base = frame.select(
            partition.alias(_P),
            sequence.alias(_O),
            time.alias(_T),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias(_R),
            *payload,
        )
        spec = self.spec
        if isinstance(spec, Tumbling):
            start, end = spec.assign(pl.col(_T))
            return base.with_columns(start.alias(_WS), end.alias(_WE))
        return (
            base.with_columns(spec.assign_all(pl.col(_T)).alias(_WS))
            .explode(_WS)
            .with_columns((pl.col(_WS) + spec.size_ms).alias(_WE))
            .filter(pl.col(_WE) > pl.col(_T))
        )

    def _split_late(self, side: Side, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series | None]:
        """Drop (record, window) pairs whose window closed; a record with none is late."""
        closed = {
            key // 2: s.closed_through
            for key, s in self.watermarks.partitions.items()
            if key % 2 == side and s.closed_through is not None
        }
        if not closed:
            return rows.drop(_T, _R), None
        threshold = pl.col(_P).replace_strict(
            list(closed), list(closed.values()), default=None, return_dtype=pl.Int64
        )
        open_ = ~((pl.col(_WE) + self.lateness) <= threshold).fill_null(False)
        flagged = rows.with_columns(open_.alias(_OPEN))
        if flagged[_OPEN].all():
            return rows.drop(_T, _R), None
        alive = flagged.group_by(_R).agg(pl.col(_OPEN).any())
        late_rows = alive.filter(~pl.col(_OPEN))[_R]
        kept = flagged.filter(pl.col(_OPEN)).drop(_OPEN, _T, _R)
        return kept, late_rows if late_rows.len() else None

    def _observe(self, side: Side, frame: pl.DataFrame, now: float) -> None:
        partition = (
            pl.col(PARTITION).cast(pl.Int32) if PARTITION in frame.columns else pl.lit(0, pl.Int32)
        )
        maxima = frame.group_by(partition.alias(_P)).agg(pl.col(EVENT_TIME).cast(pl.Int64).max())
        seen: dict[int, int] = {}
        for p, t in maxima.iter_rows():
            seen[2 * p + side] = t
            # The other side of a partition this side reached must be heard from (or go
            # idle) before the partition's windows close.
            self.watermarks.partitions.setdefault(2 * p + 1 - side, PartitionTime(last_seen=now))
            self._mark(p, 0)
            self._mark(p, 1)
        self.watermarks.observe(seen, now)

    def _advance(self, now: float, busy: frozenset[int]) -> dict[int, int]:
        """Move closed-through to the join's watermark; per partition thresholds."""
        progress = self.watermarks.partitions
        active = [
            s.max_event for k, s in progress.items() if k in busy or now - s.last_seen < self.idle
        ]
        watermark: int | None
        if any(v is None for v in active):
            watermark = None  # an active side not heard from yet holds everything back
        elif active:
            watermark = min(v for v in active if v is not None)
        else:
            watermark = max(
                (s.max_event for s in progress.values() if s.max_event is not None), default=None
            )
        out: dict[int, int] = {}
        for key, state in progress.items():
            if watermark is not None and (
                state.closed_through is None or watermark > state.closed_through
            ):
                state.closed_through = watermark
            if state.closed_through is not None:
                p = key // 2
                out[p] = min(out.get(p, state.closed_through), state.closed_through)
        return out

    # ------------------------------------------------------------------ closing

    def _close(self, thresholds: dict[int, int]) -> pl.DataFrame:
        if not thresholds:
            return self._empty_results()
        threshold = pl.col(_P).replace_strict(
            list(thresholds), list(thresholds.values()), default=None, return_dtype=pl.Int64
        )
        closing = ((pl.col(_WE) + self.lateness) <= threshold).fill_null(False)
        done: list[pl.DataFrame | None] = [None, None]
        for side, buffer in enumerate(self.buffers):
            if buffer is None or buffer.height == 0:
                continue
            flagged = buffer.with_columns(closing.alias(_CLOSING))
            closed = flagged.filter(pl.col(_CLOSING)).drop(_CLOSING)
            if closed.height:
                done[side] = closed
                for p in closed[_P].unique().to_list():
                    self._mark(p, side)
                self.buffers[side] = flagged.filter(~pl.col(_CLOSING)).drop(_CLOSING)
        left, right = done
        if left is None or right is None:
            return self._empty_results()  # nothing can match; the closed rows are dropped
        return self._join(left, right)

    def _join(self, left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
        left_on = [_P, _WS, *self.on[0]]
        right_on = [_P, _WS, *self.on[1]]
        if self.how == "semi":
            joined = left.join(right, left_on=left_on, right_on=right_on, how="semi")
            identity = [pl.col(_O).cast(pl.String)]
        else:
            renamed = {
                c: f"{c}{self.suffix}"
                for c in right.columns
                if c in left.columns and c not in (*right_on, _WE, _O)
            }
            renamed[_O] = _O_RIGHT
            joined = left.join(
                right.drop(_WE).rename(renamed), left_on=left_on, right_on=right_on, how="inner"
            )
            identity = [pl.col(_O).cast(pl.String), pl.col(_O_RIGHT).cast(pl.String)]
        key = pl.concat_str(
            [pl.lit(self.name), pl.col(_P).cast(pl.String), pl.col(_WS).cast(pl.String), *identity],
            separator="|",
        )
        hidden = {_P, _WS, _WE, _O, _O_RIGHT}
        results = joined.select(
            *[c for c in joined.columns if c not in hidden],
            pl.col(_WS).cast(_DATETIME).alias(WINDOW_START),
            pl.col(_WE).cast(_DATETIME).alias(WINDOW_END),
            pl.col(_P).alias(PARTITION),
            (pl.col(_WE) - 1).alias(EVENT_TIME),
            key.alias(ROW_ID),
        ).sort(PARTITION, WINDOW_START, ROW_ID)
        self._result_schema = results.schema
        return results

    def _empty_results(self) -> pl.DataFrame:
        if self._result_schema is None:
            return pl.DataFrame()
        return self._result_schema.to_frame()

    # ------------------------------------------------------------------ state per partition

    def _mark(self, partition: int, side: int) -> None:
        self.dirty.add(partition)
        self.side_dirty[side].add(partition)

    def side(self, side: Side) -> WindowJoinSide:
        """One side's state as an operator of its own, for checkpoints per input topic.

        When the two sides are read from two topics, partition ``p`` of each has its own
        changelog and offsets: each side's buffered rows and progress are saved with the
        offsets of the records they came from, so a restore replays neither side twice.
        """
        return WindowJoinSide(self, side)

    def snapshot(self, partition: int, sides: Sequence[int] = (0, 1)) -> Snapshot:
        """The state of ``partition``: buffered rows of each side and their progress."""
        frames: dict[str, pl.DataFrame | None] = {}
        meta: dict[str, Any] = {}
        for side in sides:
            name, buffer = _SIDES[side], self.buffers[side]
            frames[name] = None if buffer is None else buffer.filter(pl.col(_P) == partition)
            progress = self.watermarks.partitions.get(2 * partition + side)
            if progress is not None:
                meta[name] = [progress.max_event, progress.closed_through]
        return frames, meta

    def restore(
        self,
        partition: int,
        snapshot: Snapshot | None,
        now: float,
        sides: Sequence[int] = (0, 1),
    ) -> None:
        """Take over ``partition`` with state read back from the changelog."""
        self.forget(partition, sides)
        frames, meta = snapshot if snapshot is not None else ({}, {})
        for side in sides:
            name = _SIDES[side]
            rows = frames.get(name)
            if rows is not None:
                buffer = self.buffers[side]
                self.buffers[side] = (
                    rows
                    if buffer is None or buffer.height == 0
                    else pl.concat([buffer, rows], how="vertical_relaxed")
                )
            if name in meta:
                max_event, closed_through = meta[name]
                self.watermarks.restore(2 * partition + side, max_event, closed_through, now)
        # A side restored with progress while the other has none yet: the other must be
        # heard from (or go idle) before windows close, as after a first batch.
        keys = (2 * partition, 2 * partition + 1)
        if any(k in self.watermarks.partitions for k in keys):
            for k in keys:
                self.watermarks.partitions.setdefault(k, PartitionTime(last_seen=now))

    def forget(self, partition: int, sides: Sequence[int] = (0, 1)) -> None:
        """Drop the state of a revoked partition."""
        for side in sides:
            buffer = self.buffers[side]
            if buffer is not None:
                self.buffers[side] = buffer.filter(pl.col(_P) != partition)
            self.watermarks.forget(2 * partition + side)
            self.side_dirty[side].discard(partition)
        if not any(partition in d for d in self.side_dirty):
            self.dirty.discard(partition)


class WindowJoinSide:
    """The state of one side of a :class:`WindowJoinOperator`, as an ``Operator``.

    Processing goes to the join (for that side); snapshots, restores and forgetting
    touch that side's buffered rows and progress only.
    """

    def __init__(self, join: WindowJoinOperator, side: Side) -> None:
        self.join = join
        self.index: Side = side
        self.name = f"{join.name}.{_SIDES[side]}"
        # The join's own set for this side (shared, never replaced): partitions whose
        # state of this side changed since its last snapshot.
        self.dirty: set[int] = join.side_dirty[side]

    def process(
        self, frame: pl.DataFrame, now: float, busy: frozenset[int], progress: Progress = ()
    ) -> OperatorOutput:
        """A batch of this side."""
        return self.join.process(frame, now, busy, progress, side=self.index)

    def tick(self, now: float, busy: frozenset[int]) -> OperatorOutput:
        """Let time pass."""
        return self.join.tick(now, busy)

    def close(self) -> OperatorOutput:
        """End of input (closes both sides)."""
        return self.join.close()

    def snapshot(self, partition: int) -> Snapshot:
        """This side's rows and progress in ``partition``."""
        return self.join.snapshot(partition, (self.index,))

    def restore(self, partition: int, snapshot: Snapshot | None, now: float) -> None:
        """Take over this side of ``partition``."""
        self.join.restore(partition, snapshot, now, (self.index,))

    def forget(self, partition: int) -> None:
        """Drop this side of ``partition``."""
        self.join.forget(partition, (self.index,))

    def closed_through(self) -> dict[int, int]:
        """The join's progress."""
        return self.join.closed_through()
