"""The windowed aggregation operator: per-partition window state updated a batch at a time.

State is two frames.  ``groups`` holds one row per open window (input partition, key
columns, window start and end, partial aggregates); ``sketches`` holds the DDSketch
buckets of windows with quantiles.  Each micro-batch:

1. assigns records to windows and drops the (record, window) pairs whose window is
   already closed in the record's partition; a record left with no window is *late*
   and goes to the late output;
2. aggregates the remaining pairs per window into partials and merges them into state;
3. advances the per-partition watermarks (:mod:`haeryu.stream.runtime.watermarks`);
4. closes windows whose end plus the allowed lateness the watermark has passed:
   with ``emit="close"`` their final results are emitted then, once; with
   ``emit="update"`` every window touched by the batch is emitted after each batch.

Lateness is decided per micro-batch against the watermark at the batch's start, as
Flink decides it against the last emitted watermark.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import polars as pl

from haeryu.stream.api.aggregates import Aggregate, Partials, sketch_buckets, sketch_quantiles
from haeryu.stream.api.choices import Emit
from haeryu.stream.api.windows import (
    WINDOW_END,
    WINDOW_START,
    Hopping,
    Session,
    Tumbling,
    WindowSpec,
)
from haeryu.stream.columns import (
    ARRIVAL,
    CHUNK_ROW,
    EVENT_MS,
    EVENT_TIME,
    INTERNAL_PREFIX,
    OFFSET,
    PARTITION,
    ROW_ID,
    ROW_NUMBER,
    SKETCH_COLUMN,
    SKETCH_COUNT,
    SKETCH_INDEX,
    SKETCH_SIGN,
    STATE_PARTITION,
    WINDOW_END_MS,
    WINDOW_START_MS,
)
from haeryu.stream.runtime.operator import OperatorOutput, Progress, Snapshot, no_output
from haeryu.stream.runtime.shuffle_time import ShuffleProgress
from haeryu.stream.runtime.watermarks import PartitionTime, Watermarks

# Scratch columns of this module (internal: they start with INTERNAL_PREFIX).
_CLOSING = "__closing"
_LATE = "__late"
_OLD = "__old"
_OPEN = "__open"
_OTHER_END = "__owe"
_OTHER_START = "__ows"
_PREVIOUS_END = "__prev_end"
_SESSION = "__sid"
_THRESHOLD = "__thr"
_CHUNK = "__c"

WINDOW_ID = ROW_ID
"""Column identifying a window result (window start and key), used to drop duplicates."""

_DATETIME = pl.Datetime("ms", "UTC")
_END_OF_TIME = 2**62
_ROWS_PER_CHUNK = 1 << 20
"""Bound on rows per repartition chunk (chunks hold at most ~400 kB)."""


class WindowOperator:
    """Aggregate records per key over event-time windows.

    Parameters
    ----------
    spec
        Tumbling, hopping or session windows.
    aggregates
        Output columns (see :mod:`haeryu.stream.api.aggregates`).
    keys
        Key columns; windows are per distinct key (and per input partition).
    allowed_lateness_ms
        How long after a window's end records are still accepted into it.
    emit
        ``"close"``: one final result per window when it closes; ``"update"``: the
        current result of every window a batch touched, after each batch.
    idle_timeout_ms
        Wall-clock time after which a silent partition stops holding back the watermark.
    name
        Operator id, part of each result's identity.
    shuffled
        The input is a repartition topic: event-time progress comes from the progress
        records its writers interleave with the data
        (:mod:`haeryu.stream.runtime.shuffle_time`), per repartition partition, instead
        of from wall-clock idleness across partitions.  Every decision is then a
        function of the partition's log alone, whatever the batching or the timing.

    Notes
    -----
    Not thread-safe; one worker owns it.
    """

    def __init__(
        self,
        *,
        spec: WindowSpec,
        aggregates: Sequence[Aggregate],
        keys: Sequence[str] = (),
        allowed_lateness_ms: int = 0,
        emit: Emit = "close",
        idle_timeout_ms: int = 10_000,
        name: str = "window",
        time_column: str = EVENT_TIME,
        shuffled: bool = False,
    ) -> None:
        self.spec = spec
        self.shuffled = shuffled
        self.shuffles: dict[int, ShuffleProgress] = {}
        self.keys = list(keys)
        self.lateness = allowed_lateness_ms
        self.emit = emit
        self.name = name
        self.time_column = time_column
        self.partials = Partials(list(aggregates))
        self.quantiles = self.partials.quantiles()
        self.watermarks = Watermarks(idle_timeout_ms)
        self.groups: pl.DataFrame | None = None
        self.sketches: pl.DataFrame | None = None
        self.dirty: set[int] = set()
        self.group_columns = [STATE_PARTITION, *self.keys, WINDOW_START_MS, WINDOW_END_MS]
        self.sketch_columns = [*self.group_columns, SKETCH_COLUMN, SKETCH_SIGN, SKETCH_INDEX]
        self.partial_columns = [
            e.meta.output_name() for e in self.partials.batch(EVENT_MS, ARRIVAL)
        ]
        self._result_schema: pl.Schema | None = None

    # ------------------------------------------------------------------ processing

    def process(
        self,
        frame: pl.DataFrame,
        now: float,
        busy: frozenset[int] = frozenset(),
        progress: Progress = (),
    ) -> OperatorOutput:
        """Add a batch, close what the watermark allows, return results and late records.

        ``busy`` names partitions with records still waiting to be read (never idle).
        ``progress`` holds the progress records read with the batch of a shuffled
        operator; a row is judged against the watermark its partition had reached at
        the row's own offset.
        """
        late = frame.clear()
        touched: pl.DataFrame | None = None
        if frame.height or (self._result_schema is None and frame.width):
            pre = self._prepare(frame)
            start = self.watermarks.closed_through()
            guard = self._threshold(start) if start else None
            if self.shuffled:
                pre, threshold = self._row_thresholds(pre, start, self._apply(progress))
            else:
                threshold = guard
            if isinstance(self.spec, Session):
                touched, late_rows = self._session_batch(pre, threshold, guard)
            else:
                partials, sketches, late_rows = self._fixed_batch(pre, threshold)
                if self.groups is None:
                    self.groups = partials.clear()
                if partials.height:
                    touched = partials.select(self.group_columns)
                    self._merge(partials, sketches)
            if late_rows is not None and late_rows.len():
                late = frame.filter(pl.int_range(pl.len(), dtype=pl.UInt32).is_in(late_rows))
            maxima = pre.group_by(STATE_PARTITION).agg(pl.col(EVENT_MS).max())
            if not self.shuffled:
                self.watermarks.observe(dict(maxima.iter_rows()), now)
            self.dirty.update(maxima[STATE_PARTITION].to_list())
        elif self.shuffled and progress:
            self._apply(progress)
        if self.shuffled:
            closing = self.watermarks.closed_through()
        else:
            closing = self.watermarks.advance(now, busy)
        results = self._close(closing, touched)
        return OperatorOutput(results, late)

    def _apply(self, progress: Progress) -> dict[int, tuple[list[int], list[int]]]:
        """Fold progress records in log order; per partition, (offsets, closed_through)."""
        steps: dict[int, tuple[list[int], list[int]]] = {}
        for partition, offset, record in sorted(progress, key=lambda x: (x[0], x[1])):
            shuffle = self.shuffles.setdefault(partition, ShuffleProgress())
            shuffle.apply(record)
            self.dirty.add(partition)
            mark = shuffle.watermark()
            state = self.watermarks.partitions.setdefault(partition, PartitionTime())
            if mark is not None and (state.closed_through is None or mark > state.closed_through):
                state.closed_through = mark
                offsets, marks = steps.setdefault(partition, ([], []))
                offsets.append(offset)
                marks.append(mark)
        return steps

    @staticmethod
    def _row_thresholds(
        pre: pl.DataFrame,
        start: dict[int, int],
        steps: dict[int, tuple[list[int], list[int]]],
    ) -> tuple[pl.DataFrame, pl.Expr | None]:
        """Each row's threshold: its partition's ``closed_through`` just before the row."""
        if not steps:
            return pre, (WindowOperator._threshold(start) if start else None)
        pre = pre.with_columns((pl.col(ARRIVAL) // _ROWS_PER_CHUNK).alias(_CHUNK))
        chunks = pre.select(STATE_PARTITION, _CHUNK).unique()
        values: list[int | None] = []
        for partition, offset in chunks.iter_rows():
            offsets, marks = steps.get(partition, ([], []))
            i = bisect.bisect_left(offsets, offset)  # progress read before the chunk
            values.append(marks[i - 1] if i else start.get(partition))
        table = chunks.with_columns(pl.Series(_THRESHOLD, values, dtype=pl.Int64))
        return pre.join(table, on=[STATE_PARTITION, _CHUNK], how="left"), pl.col(_THRESHOLD)

    def tick(self, now: float, busy: frozenset[int]) -> OperatorOutput:
        """Close the windows that time alone closes (idle partitions); none before data."""
        if self.groups is None:
            return no_output()
        return self.process(pl.DataFrame(), now, busy)

    def close(self) -> OperatorOutput:
        """End of input: close every open window and return the results."""
        if self.groups is None:
            return OperatorOutput(self._empty_results(), pl.DataFrame())
        end = {p: _END_OF_TIME for p in self.groups[STATE_PARTITION].unique().to_list()}
        for partition in end:
            self.watermarks.restore(partition, _END_OF_TIME, _END_OF_TIME, 0.0)
            self.shuffles.pop(partition, None)
        return OperatorOutput(self._close(end, None), pl.DataFrame())

    def closed_through(self) -> dict[int, int]:
        """Event time (ms) through which each partition's windows are closed."""
        return self.watermarks.closed_through()

    def _prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        partition = (
            pl.col(PARTITION).cast(pl.Int32) if PARTITION in frame.columns else pl.lit(0, pl.Int32)
        )
        sequence = (
            pl.col(OFFSET).cast(pl.Int64)
            if OFFSET in frame.columns
            else pl.int_range(pl.len(), dtype=pl.Int64)
        )
        if self.shuffled:
            # Rows of one chunk share its offset; their place in the chunk orders them.
            row = pl.col(CHUNK_ROW).cast(pl.Int64) if CHUNK_ROW in frame.columns else pl.lit(0)
            sequence = (sequence * _ROWS_PER_CHUNK) + row
        return frame.select(
            partition.alias(STATE_PARTITION),
            *[pl.col(k) for k in self.keys],
            pl.col(self.time_column).cast(pl.Int64).alias(EVENT_MS),
            sequence.alias(ARRIVAL),
            *self.partials.input_columns(),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW_NUMBER),
        )

    @staticmethod
    def _threshold(thresholds: dict[int, int]) -> pl.Expr:
        if not thresholds:
            return pl.lit(None, pl.Int64)
        return pl.col(STATE_PARTITION).replace_strict(
            list(thresholds), list(thresholds.values()), default=None, return_dtype=pl.Int64
        )

    def _fixed_batch(
        self, pre: pl.DataFrame, threshold: pl.Expr | None
    ) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.Series | None]:
        spec = self.spec
        if isinstance(spec, Tumbling):
            start, end = spec.assign(pl.col(EVENT_MS))
            pairs = pre.with_columns(start.alias(WINDOW_START_MS), end.alias(WINDOW_END_MS))
        else:
            assert isinstance(spec, Hopping)
            pairs = (
                pre.with_columns(spec.assign_all(pl.col(EVENT_MS)).alias(WINDOW_START_MS))
                .explode(WINDOW_START_MS)
                .with_columns((pl.col(WINDOW_START_MS) + spec.size_ms).alias(WINDOW_END_MS))
                .filter(pl.col(WINDOW_END_MS) > pl.col(EVENT_MS))
            )
        late_rows: pl.Series | None = None
        if threshold is not None:
            open_ = ~((pl.col(WINDOW_END_MS) + self.lateness) <= threshold).fill_null(False)
            flagged = pairs.with_columns(open_.alias(_OPEN))
            if not flagged[_OPEN].all():
                if isinstance(spec, Tumbling):
                    late_rows = flagged.filter(~pl.col(_OPEN))[ROW_NUMBER]
                else:
                    alive = flagged.group_by(ROW_NUMBER).agg(pl.col(_OPEN).any())
                    late_rows = alive.filter(~pl.col(_OPEN))[ROW_NUMBER]
                pairs = flagged.filter(pl.col(_OPEN)).drop(_OPEN)
        partials = pairs.group_by(self.group_columns).agg(self.partials.batch(EVENT_MS, ARRIVAL))
        return partials, self._batch_sketches(pairs, self.group_columns), late_rows

    def _batch_sketches(self, pairs: pl.DataFrame, by: list[str]) -> pl.DataFrame | None:
        if not self.partials.sketched:
            return None
        parts = []
        for j in self.partials.sketched:
            sign, index = sketch_buckets(pl.col(f"{INTERNAL_PREFIX}in{j}"))
            parts.append(
                pairs.filter(pl.col(f"{INTERNAL_PREFIX}in{j}").is_not_null())
                .select(*by, pl.lit(j, pl.Int16).alias(SKETCH_COLUMN), sign, index)
                .group_by([*by, SKETCH_COLUMN, SKETCH_SIGN, SKETCH_INDEX])
                .agg(pl.len().cast(pl.Int64).alias(SKETCH_COUNT))
            )
        return pl.concat(parts)

    def _merge(self, partials: pl.DataFrame, sketches: pl.DataFrame | None) -> None:
        if self.groups is None or self.groups.height == 0:
            self.groups = partials
        else:
            self.groups = (
                pl.concat([self.groups, partials], how="vertical_relaxed")
                .group_by(self.group_columns)
                .agg(self.partials.merge())
            )
        if sketches is not None:
            if self.sketches is not None and self.sketches.height:
                sketches = (
                    pl.concat([self.sketches, sketches], how="vertical_relaxed")
                    .group_by(self.sketch_columns)
                    .agg(pl.col(SKETCH_COUNT).sum())
                )
            self.sketches = sketches

    # ------------------------------------------------------------------ sessions

    def _session_batch(
        self, pre: pl.DataFrame, threshold: pl.Expr | None, guard: pl.Expr | None
    ) -> tuple[pl.DataFrame, pl.Series | None]:
        """Merge the batch's records with the open sessions of the keys they touch.

        Every record starts as a one-record session ``[t, t + gap)``.  A record whose
        own session is already closed is late, unless it overlaps (or touches) an open
        session of its key, which it then joins -- as Flink merges before it checks.
        The rest are sorted and chained with the open sessions: a session starts where
        the next interval begins after everything before it ended.
        """
        assert isinstance(self.spec, Session)
        gap = self.spec.gap_ms
        by = [STATE_PARTITION, *self.keys]
        rows = pre.with_columns(
            pl.col(EVENT_MS).alias(WINDOW_START_MS), (pl.col(EVENT_MS) + gap).alias(WINDOW_END_MS)
        )
        old = untouched = None
        if self.groups is not None and self.groups.height:
            batch_keys = rows.select(by).unique()
            old = self.groups.join(batch_keys, on=by, how="semi", nulls_equal=True)
            untouched = self.groups.join(batch_keys, on=by, how="anti", nulls_equal=True)
        late_rows: pl.Series | None = None
        if threshold is not None:
            closed = ((pl.col(WINDOW_END_MS) + self.lateness) <= threshold).fill_null(False)
            candidates = rows.filter(closed)
            if candidates.height:
                late = candidates.select(ROW_NUMBER)
                if old is not None and old.height:
                    spans = old.select(
                        *by,
                        pl.col(WINDOW_START_MS).alias(_OTHER_START),
                        pl.col(WINDOW_END_MS).alias(_OTHER_END),
                    )
                    rescued = (
                        candidates.join(spans, on=by, nulls_equal=True)
                        .filter(
                            (pl.col(EVENT_MS) <= pl.col(_OTHER_END))
                            & (pl.col(WINDOW_END_MS) >= pl.col(_OTHER_START))
                            # a session that closed before the row (shuffled input) is gone
                            & ~((pl.col(_OTHER_END) + self.lateness) <= threshold).fill_null(False)
                        )
                        .select(ROW_NUMBER)
                    )
                    late = late.join(rescued, on=ROW_NUMBER, how="anti")
                if late.height:
                    late_rows = late[ROW_NUMBER]
                    rows = rows.filter(~pl.col(ROW_NUMBER).is_in(late_rows.implode()))
        singles = rows.group_by([*by, WINDOW_START_MS, WINDOW_END_MS, ROW_NUMBER]).agg(
            self.partials.batch(EVENT_MS, ARRIVAL)
        )
        parts = [singles.with_columns(pl.lit(False).alias(_OLD))]
        if old is not None and old.height:
            parts.insert(
                0,
                old.with_columns(
                    pl.lit(None, pl.UInt32).alias(ROW_NUMBER), pl.lit(True).alias(_OLD)
                ),
            )
        chained = pl.concat(parts, how="diagonal_relaxed").sort(
            [*by, WINDOW_START_MS], nulls_last=True
        )
        chained = chained.with_columns(
            pl.col(WINDOW_END_MS).cum_max().shift(1).over(by).alias(_PREVIOUS_END)
        )
        starts = pl.col(_PREVIOUS_END).is_null() | (pl.col(WINDOW_START_MS) > pl.col(_PREVIOUS_END))
        chained = chained.with_columns(starts.cast(pl.UInt32).cum_sum().over(by).alias(_SESSION))
        merged = chained.group_by([*by, _SESSION]).agg(
            pl.col(WINDOW_START_MS).min(),
            pl.col(WINDOW_END_MS).max(),
            pl.col(_OLD).any(),
            *self.partials.merge(),
        )
        # Every new-only session holds a record whose own session is open, so none can
        # be past the watermark; the check stays as a guard.
        too_late = (
            (~pl.col(_OLD)) & ((pl.col(WINDOW_END_MS) + self.lateness) <= guard).fill_null(False)
            if guard is not None
            else pl.lit(False)
        )
        flagged = merged.with_columns(too_late.alias(_LATE))
        kept = flagged.filter(~pl.col(_LATE))
        new_groups = kept.select(self.group_columns + self.partial_columns)
        if self.sketches is not None or self.partials.sketched:
            self._rekey_sketches(rows, chained, kept, old)
        self.groups = (
            new_groups
            if untouched is None
            else pl.concat([untouched, new_groups], how="vertical_relaxed")
        )
        return kept.select(self.group_columns), late_rows

    def _rekey_sketches(
        self,
        rows: pl.DataFrame,
        chained: pl.DataFrame,
        kept: pl.DataFrame,
        old: pl.DataFrame | None,
    ) -> None:
        by = [STATE_PARTITION, *self.keys]
        sid_of_row = chained.filter(~pl.col(_OLD)).select(ROW_NUMBER, _SESSION)
        new_rows = rows.join(sid_of_row, on=ROW_NUMBER)
        fresh = self._batch_sketches(new_rows, [*by, _SESSION])
        pieces = [fresh] if fresh is not None else []
        previous = self.sketches
        untouched = previous
        if previous is not None and previous.height and old is not None and old.height:
            sid_of_old = chained.filter(pl.col(_OLD)).select([*by, WINDOW_START_MS, _SESSION])
            carried = previous.join(sid_of_old, on=[*by, WINDOW_START_MS], nulls_equal=True)
            pieces.append(
                carried.select(
                    [*by, _SESSION, SKETCH_COLUMN, SKETCH_SIGN, SKETCH_INDEX, SKETCH_COUNT]
                )
            )
            untouched = previous.join(
                old.select(self.group_columns), on=self.group_columns, how="anti", nulls_equal=True
            )
        if not pieces:
            return
        bounds = kept.select([*by, _SESSION, WINDOW_START_MS, WINDOW_END_MS])
        merged = (
            pl.concat(pieces, how="vertical_relaxed")
            .group_by([*by, _SESSION, SKETCH_COLUMN, SKETCH_SIGN, SKETCH_INDEX])
            .agg(pl.col(SKETCH_COUNT).sum())
            .join(bounds, on=[*by, _SESSION], nulls_equal=True)
            .select([*self.sketch_columns, SKETCH_COUNT])
        )
        self.sketches = (
            merged
            if untouched is None or untouched.height == 0
            else pl.concat([untouched, merged], how="vertical_relaxed")
        )

    # ------------------------------------------------------------------ closing

    def _close(self, thresholds: dict[int, int], touched: pl.DataFrame | None) -> pl.DataFrame:
        if self.groups is None or self.groups.height == 0:
            if self.groups is not None and self._result_schema is None:
                return self._finish(self.groups)
            return self._empty_results()
        closing_mask = (
            (pl.col(WINDOW_END_MS) + self.lateness) <= self._threshold(thresholds)
        ).fill_null(False)
        flagged = self.groups.with_columns(closing_mask.alias(_CLOSING))
        closing = flagged.filter(pl.col(_CLOSING)).drop(_CLOSING)
        if self.emit == "close":
            emit = closing
        elif touched is not None and touched.height:
            emit = self.groups.join(touched, on=self.group_columns, how="semi", nulls_equal=True)
        else:
            emit = self.groups.clear()
        results = (
            self._finish(emit)
            if emit.height or self._result_schema is None
            else self._empty_results()
        )
        if closing.height:
            self.dirty.update(closing[STATE_PARTITION].unique().to_list())
            self.groups = flagged.filter(~pl.col(_CLOSING)).drop(_CLOSING)
            if self.sketches is not None:
                self.sketches = self.sketches.join(
                    closing.select(self.group_columns),
                    on=self.group_columns,
                    how="anti",
                    nulls_equal=True,
                )
        return results

    def _finish(self, rows: pl.DataFrame) -> pl.DataFrame:
        if self.quantiles:
            sketches = (
                self.sketches.join(
                    rows.select(self.group_columns), on=self.group_columns, nulls_equal=True
                )
                if self.sketches is not None
                else None
            )
            if sketches is not None and sketches.height:
                estimates = sketch_quantiles(sketches, self.group_columns, self.quantiles)
                rows = rows.join(estimates, on=self.group_columns, how="left", nulls_equal=True)
            for name, _, _ in self.quantiles:
                if f"{INTERNAL_PREFIX}q_{name}" not in rows.columns:
                    rows = rows.with_columns(
                        pl.lit(None, pl.Float64).alias(f"{INTERNAL_PREFIX}q_{name}")
                    )
        identity = pl.concat_str(
            [
                pl.lit(self.name),
                pl.col(STATE_PARTITION).cast(pl.String),
                pl.col(WINDOW_START_MS).cast(pl.String),
                *[pl.col(k).cast(pl.String).fill_null("\x00") for k in self.keys],
            ],
            separator="|",
        )
        results = rows.select(
            *[pl.col(k) for k in self.keys],
            pl.col(WINDOW_START_MS).cast(_DATETIME).alias(WINDOW_START),
            pl.col(WINDOW_END_MS).cast(_DATETIME).alias(WINDOW_END),
            *self.partials.finish(),
            pl.col(STATE_PARTITION).alias(PARTITION),
            (pl.col(WINDOW_END_MS) - 1).alias(EVENT_TIME),
            # Only a final result has a stable identity; updates repeat on purpose.
            *([identity.alias(WINDOW_ID)] if self.emit == "close" else []),
        ).sort(PARTITION, WINDOW_START, *self.keys, nulls_last=True)
        self._result_schema = results.schema
        return results

    def _empty_results(self) -> pl.DataFrame:
        if self._result_schema is None:
            return pl.DataFrame()
        return self._result_schema.to_frame()

    # ------------------------------------------------------------------ state per partition

    def snapshot(self, partition: int) -> Snapshot:
        """The state of ``partition``: open windows, sketches and event-time progress."""
        progress = self.watermarks.partitions.get(partition)
        return (
            {
                "groups": _rows_of(self.groups, partition),
                "sketches": _rows_of(self.sketches, partition),
            },
            {
                "max_event": progress.max_event if progress else None,
                "closed_through": progress.closed_through if progress else None,
                "shuffle": (
                    self.shuffles[partition].to_json() if partition in self.shuffles else None
                ),
            },
        )

    def restore(self, partition: int, snapshot: Snapshot | None, now: float) -> None:
        """Take over ``partition`` with state read back from the changelog."""
        self.forget(partition)
        frames, meta = snapshot if snapshot is not None else ({}, {})
        groups, sketches = frames.get("groups"), frames.get("sketches")
        if groups is not None and groups.height:
            self.groups = (
                groups
                if self.groups is None or self.groups.height == 0
                else pl.concat([self.groups, groups], how="vertical_relaxed")
            )
        if sketches is not None and sketches.height:
            self.sketches = (
                sketches
                if self.sketches is None or self.sketches.height == 0
                else pl.concat([self.sketches, sketches], how="vertical_relaxed")
            )
        max_event, closed_through = meta.get("max_event"), meta.get("closed_through")
        if max_event is not None or closed_through is not None:
            self.watermarks.restore(partition, max_event, closed_through, now)
        if meta.get("shuffle") is not None:
            self.shuffles[partition] = ShuffleProgress.from_json(meta["shuffle"])

    def forget(self, partition: int) -> None:
        """Drop the state of a revoked partition."""
        if self.groups is not None:
            self.groups = self.groups.filter(pl.col(STATE_PARTITION) != partition)
        if self.sketches is not None:
            self.sketches = self.sketches.filter(pl.col(STATE_PARTITION) != partition)
        self.watermarks.forget(partition)
        self.shuffles.pop(partition, None)
        self.dirty.discard(partition)


def _rows_of(frame: pl.DataFrame | None, partition: int) -> pl.DataFrame | None:
    if frame is None:
        return None
    return frame.filter(pl.col(STATE_PARTITION) == partition)
