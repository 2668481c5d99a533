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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from haeryu.stream.api.aggregates import Aggregate, Partials, sketch_buckets, sketch_quantiles
from haeryu.stream.api.windows import (
    WINDOW_END,
    WINDOW_START,
    Hopping,
    Session,
    Tumbling,
    WindowSpec,
)
from haeryu.stream.columns import EVENT_TIME, OFFSET, PARTITION
from haeryu.stream.runtime.watermarks import Watermarks

Emit = Literal["close", "update"]
WINDOW_ID = "__id"
"""Column identifying a window result (window start and key), used to drop duplicates."""

_DATETIME = pl.Datetime("ms", "UTC")
_END_OF_TIME = 2**62


@dataclass(slots=True)
class WindowOutput:
    """What one batch produced: window results and late records."""

    results: pl.DataFrame
    late: pl.DataFrame


@dataclass(slots=True)
class WindowState:
    """The state of one partition: open windows, sketches and event-time progress."""

    groups: pl.DataFrame | None
    sketches: pl.DataFrame | None
    max_event: int | None
    closed_through: int | None


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
    ) -> None:
        self.spec = spec
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
        self.group_columns = ["__p", *self.keys, "__ws", "__we"]
        self.sketch_columns = [*self.group_columns, "__col", "__sign", "__idx"]
        self.partial_columns = [e.meta.output_name() for e in self.partials.batch("__t", "__o")]
        self._result_schema: pl.Schema | None = None

    # ------------------------------------------------------------------ processing

    def process(
        self, frame: pl.DataFrame, now: float, busy: frozenset[int] = frozenset()
    ) -> WindowOutput:
        """Add a batch, close what the watermark allows, return results and late records.

        ``busy`` names partitions with records still waiting to be read (never idle).
        """
        late = frame.clear()
        touched: pl.DataFrame | None = None
        if frame.height or (self._result_schema is None and frame.width):
            pre = self._prepare(frame)
            thresholds = self.watermarks.closed_through()
            if isinstance(self.spec, Session):
                touched, late_rows = self._session_batch(pre, thresholds)
            else:
                partials, sketches, late_rows = self._fixed_batch(pre, thresholds)
                if self.groups is None:
                    self.groups = partials.clear()
                if partials.height:
                    touched = partials.select(self.group_columns)
                    self._merge(partials, sketches)
            if late_rows is not None and late_rows.len():
                late = frame.filter(pl.int_range(pl.len(), dtype=pl.UInt32).is_in(late_rows))
            maxima = pre.group_by("__p").agg(pl.col("__t").max())
            self.watermarks.observe(dict(maxima.iter_rows()), now)
            self.dirty.update(maxima["__p"].to_list())
        closing = self.watermarks.advance(now, busy)
        results = self._close(closing, touched)
        return WindowOutput(results, late)

    def close_all(self) -> pl.DataFrame:
        """End of input: close every open window and return the results."""
        if self.groups is None:
            return self._empty_results()
        end = {p: _END_OF_TIME for p in self.groups["__p"].unique().to_list()}
        for partition in end:
            self.watermarks.restore(partition, _END_OF_TIME, _END_OF_TIME, 0.0)
        return self._close(end, None)

    def _prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        partition = (
            pl.col(PARTITION).cast(pl.Int32) if PARTITION in frame.columns else pl.lit(0, pl.Int32)
        )
        sequence = (
            pl.col(OFFSET).cast(pl.Int64)
            if OFFSET in frame.columns
            else pl.int_range(pl.len(), dtype=pl.Int64)
        )
        return frame.select(
            partition.alias("__p"),
            *[pl.col(k) for k in self.keys],
            pl.col(self.time_column).cast(pl.Int64).alias("__t"),
            sequence.alias("__o"),
            *self.partials.input_columns(),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("__r"),
        )

    @staticmethod
    def _threshold(thresholds: dict[int, int]) -> pl.Expr:
        if not thresholds:
            return pl.lit(None, pl.Int64)
        return pl.col("__p").replace_strict(
            list(thresholds), list(thresholds.values()), default=None, return_dtype=pl.Int64
        )

    def _fixed_batch(
        self, pre: pl.DataFrame, thresholds: dict[int, int]
    ) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.Series | None]:
        spec = self.spec
        if isinstance(spec, Tumbling):
            start, end = spec.assign(pl.col("__t"))
            pairs = pre.with_columns(start.alias("__ws"), end.alias("__we"))
        else:
            assert isinstance(spec, Hopping)
            pairs = (
                pre.with_columns(spec.assign_all(pl.col("__t")).alias("__ws"))
                .explode("__ws")
                .with_columns((pl.col("__ws") + spec.size_ms).alias("__we"))
                .filter(pl.col("__we") > pl.col("__t"))
            )
        late_rows: pl.Series | None = None
        if thresholds:
            open_ = ~((pl.col("__we") + self.lateness) <= self._threshold(thresholds)).fill_null(
                False
            )
            flagged = pairs.with_columns(open_.alias("__open"))
            if not flagged["__open"].all():
                if isinstance(spec, Tumbling):
                    late_rows = flagged.filter(~pl.col("__open"))["__r"]
                else:
                    alive = flagged.group_by("__r").agg(pl.col("__open").any())
                    late_rows = alive.filter(~pl.col("__open"))["__r"]
                pairs = flagged.filter(pl.col("__open")).drop("__open")
        partials = pairs.group_by(self.group_columns).agg(self.partials.batch("__t", "__o"))
        return partials, self._batch_sketches(pairs, self.group_columns), late_rows

    def _batch_sketches(self, pairs: pl.DataFrame, by: list[str]) -> pl.DataFrame | None:
        if not self.partials.sketched:
            return None
        parts = []
        for j in self.partials.sketched:
            sign, index = sketch_buckets(pl.col(f"__in{j}"))
            parts.append(
                pairs.filter(pl.col(f"__in{j}").is_not_null())
                .select(*by, pl.lit(j, pl.Int16).alias("__col"), sign, index)
                .group_by([*by, "__col", "__sign", "__idx"])
                .agg(pl.len().cast(pl.Int64).alias("__cnt"))
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
                    .agg(pl.col("__cnt").sum())
                )
            self.sketches = sketches

    # ------------------------------------------------------------------ sessions

    def _session_batch(
        self, pre: pl.DataFrame, thresholds: dict[int, int]
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
        by = ["__p", *self.keys]
        rows = pre.with_columns(pl.col("__t").alias("__ws"), (pl.col("__t") + gap).alias("__we"))
        old = untouched = None
        if self.groups is not None and self.groups.height:
            batch_keys = rows.select(by).unique()
            old = self.groups.join(batch_keys, on=by, how="semi", nulls_equal=True)
            untouched = self.groups.join(batch_keys, on=by, how="anti", nulls_equal=True)
        late_rows: pl.Series | None = None
        if thresholds:
            closed = ((pl.col("__we") + self.lateness) <= self._threshold(thresholds)).fill_null(
                False
            )
            candidates = rows.filter(closed)
            if candidates.height:
                late = candidates.select("__r")
                if old is not None and old.height:
                    spans = old.select(
                        *by, pl.col("__ws").alias("__ows"), pl.col("__we").alias("__owe")
                    )
                    rescued = (
                        candidates.join(spans, on=by, nulls_equal=True)
                        .filter(
                            (pl.col("__t") <= pl.col("__owe")) & (pl.col("__we") >= pl.col("__ows"))
                        )
                        .select("__r")
                    )
                    late = late.join(rescued, on="__r", how="anti")
                if late.height:
                    late_rows = late["__r"]
                    rows = rows.filter(~pl.col("__r").is_in(late_rows.implode()))
        singles = rows.group_by([*by, "__ws", "__we", "__r"]).agg(self.partials.batch("__t", "__o"))
        parts = [singles.with_columns(pl.lit(False).alias("__old"))]
        if old is not None and old.height:
            parts.insert(
                0,
                old.with_columns(pl.lit(None, pl.UInt32).alias("__r"), pl.lit(True).alias("__old")),
            )
        chained = pl.concat(parts, how="diagonal_relaxed").sort([*by, "__ws"], nulls_last=True)
        chained = chained.with_columns(
            pl.col("__we").cum_max().shift(1).over(by).alias("__prev_end")
        )
        starts = pl.col("__prev_end").is_null() | (pl.col("__ws") > pl.col("__prev_end"))
        chained = chained.with_columns(starts.cast(pl.UInt32).cum_sum().over(by).alias("__sid"))
        merged = chained.group_by([*by, "__sid"]).agg(
            pl.col("__ws").min(),
            pl.col("__we").max(),
            pl.col("__old").any(),
            *self.partials.merge(),
        )
        # Every new-only session holds a record whose own session is open, so none can
        # be past the watermark; the check stays as a guard.
        too_late = (~pl.col("__old")) & (
            (pl.col("__we") + self.lateness) <= self._threshold(thresholds)
        ).fill_null(False)
        flagged = merged.with_columns(too_late.alias("__late"))
        kept = flagged.filter(~pl.col("__late"))
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
        by = ["__p", *self.keys]
        sid_of_row = chained.filter(~pl.col("__old")).select("__r", "__sid")
        new_rows = rows.join(sid_of_row, on="__r")
        fresh = self._batch_sketches(new_rows, [*by, "__sid"])
        pieces = [fresh] if fresh is not None else []
        previous = self.sketches
        untouched = previous
        if previous is not None and previous.height and old is not None and old.height:
            sid_of_old = chained.filter(pl.col("__old")).select([*by, "__ws", "__sid"])
            carried = previous.join(sid_of_old, on=[*by, "__ws"], nulls_equal=True)
            pieces.append(carried.select([*by, "__sid", "__col", "__sign", "__idx", "__cnt"]))
            untouched = previous.join(
                old.select(self.group_columns), on=self.group_columns, how="anti", nulls_equal=True
            )
        if not pieces:
            return
        bounds = kept.select([*by, "__sid", "__ws", "__we"])
        merged = (
            pl.concat(pieces, how="vertical_relaxed")
            .group_by([*by, "__sid", "__col", "__sign", "__idx"])
            .agg(pl.col("__cnt").sum())
            .join(bounds, on=[*by, "__sid"], nulls_equal=True)
            .select([*self.sketch_columns, "__cnt"])
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
        closing_mask = ((pl.col("__we") + self.lateness) <= self._threshold(thresholds)).fill_null(
            False
        )
        flagged = self.groups.with_columns(closing_mask.alias("__closing"))
        closing = flagged.filter(pl.col("__closing")).drop("__closing")
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
            self.dirty.update(closing["__p"].unique().to_list())
            self.groups = flagged.filter(~pl.col("__closing")).drop("__closing")
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
                if f"__q_{name}" not in rows.columns:
                    rows = rows.with_columns(pl.lit(None, pl.Float64).alias(f"__q_{name}"))
        identity = pl.concat_str(
            [
                pl.lit(self.name),
                pl.col("__p").cast(pl.String),
                pl.col("__ws").cast(pl.String),
                *[pl.col(k).cast(pl.String).fill_null("\x00") for k in self.keys],
            ],
            separator="|",
        )
        results = rows.select(
            *[pl.col(k) for k in self.keys],
            pl.col("__ws").cast(_DATETIME).alias(WINDOW_START),
            pl.col("__we").cast(_DATETIME).alias(WINDOW_END),
            *self.partials.finish(),
            pl.col("__p").alias(PARTITION),
            (pl.col("__we") - 1).alias(EVENT_TIME),
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

    def snapshot(self, partition: int) -> WindowState:
        """The state of ``partition`` (for the changelog)."""
        progress = self.watermarks.partitions.get(partition)
        return WindowState(
            _rows_of(self.groups, partition),
            _rows_of(self.sketches, partition),
            progress.max_event if progress else None,
            progress.closed_through if progress else None,
        )

    def restore(self, partition: int, state: WindowState, now: float) -> None:
        """Take over ``partition`` with state read back from the changelog."""
        self.forget(partition)
        if state.groups is not None and state.groups.height:
            self.groups = (
                state.groups
                if self.groups is None or self.groups.height == 0
                else pl.concat([self.groups, state.groups], how="vertical_relaxed")
            )
        if state.sketches is not None and state.sketches.height:
            self.sketches = (
                state.sketches
                if self.sketches is None or self.sketches.height == 0
                else pl.concat([self.sketches, state.sketches], how="vertical_relaxed")
            )
        if state.max_event is not None or state.closed_through is not None:
            self.watermarks.restore(partition, state.max_event, state.closed_through, now)

    def forget(self, partition: int) -> None:
        """Drop the state of a revoked partition."""
        if self.groups is not None:
            self.groups = self.groups.filter(pl.col("__p") != partition)
        if self.sketches is not None:
            self.sketches = self.sketches.filter(pl.col("__p") != partition)
        self.watermarks.forget(partition)
        self.dirty.discard(partition)


def _rows_of(frame: pl.DataFrame | None, partition: int) -> pl.DataFrame | None:
    if frame is None:
        return None
    return frame.filter(pl.col("__p") == partition)
