"""Per-key state carried across micro-batches, updated by frame-level functions.

State is a frame per input partition with one row per key.  For each partition in a
batch, the user function gets that partition's rows and the current state rows of their
keys, and returns the output rows and the new state of those keys; a key of the batch
that is missing from the new state is deleted.  :func:`ewm_update` is a built-in
function of that shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from haeryu.stream.columns import PARTITION
from haeryu.stream.errors import StreamError

StateFn = Callable[[pl.DataFrame, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]


class StatefulOperator:
    """Runs a :data:`StateFn` per partition and keeps the state it returns.

    Notes
    -----
    Not thread-safe; one worker owns it.
    """

    def __init__(
        self, fn: StateFn, keys: Sequence[str], state_schema: pl.Schema | None, name: str
    ) -> None:
        self.fn = fn
        self.keys = list(keys)
        self.name = name
        self.state: dict[int, pl.DataFrame] = {}
        self.state_schema = state_schema
        self.dirty: set[int] = set()

    def _empty_state(self, batch: pl.DataFrame) -> pl.DataFrame:
        schema = {k: batch.schema[k] for k in self.keys}
        if self.state_schema is not None:
            schema.update(self.state_schema)
        return pl.Schema(schema).to_frame()

    def process(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Update state with ``frame`` and return the function's output rows."""
        if frame.height == 0:
            return frame
        outputs: list[pl.DataFrame] = []
        parts = (
            frame.partition_by(PARTITION, as_dict=True, maintain_order=True)
            if PARTITION in frame.columns
            else {(0,): frame}
        )
        for (partition, *_), batch in parts.items():
            p = int(partition) if partition is not None else 0
            current = self.state.get(p)
            keys = batch.select(self.keys).unique()
            if current is None or current.height == 0:
                relevant = current if current is not None else self._empty_state(batch)
            else:
                relevant = current.join(keys, on=self.keys, how="semi", nulls_equal=True)
            try:
                out, new_state = self.fn(batch, relevant)
            except Exception as exc:
                raise StreamError(f"update_state function {self.name} failed: {exc}") from exc
            missing = [k for k in self.keys if k not in new_state.columns]
            if missing:
                raise StreamError(
                    f"update_state function {self.name} returned state without key "
                    f"columns {missing}"
                )
            if current is None or current.height == 0:
                self.state[p] = new_state
            else:
                kept = current.join(keys, on=self.keys, how="anti", nulls_equal=True)
                self.state[p] = pl.concat([kept, new_state], how="diagonal_relaxed")
            self.dirty.add(p)
            if PARTITION not in out.columns and out.height:
                out = out.with_columns(pl.lit(p, pl.Int32).alias(PARTITION))
            outputs.append(out)
        return outputs[0] if len(outputs) == 1 else pl.concat(outputs, how="diagonal_relaxed")

    def snapshot(self, partition: int) -> pl.DataFrame | None:
        """The state of ``partition`` (for the changelog)."""
        return self.state.get(partition)

    def restore(self, partition: int, state: pl.DataFrame | None) -> None:
        """Take over ``partition`` with state read back from the changelog."""
        if state is None:
            self.state.pop(partition, None)
        else:
            self.state[partition] = state

    def forget(self, partition: int) -> None:
        """Drop the state of a revoked partition."""
        self.state.pop(partition, None)
        self.dirty.discard(partition)


def ewm_update(column: str, alpha: float, prefix: str, keys: Sequence[str]) -> StateFn:
    """A :data:`StateFn` keeping the exponentially weighted mean and variance per key.

    Vectorised with Polars' ``ewm_mean(adjust=False)``: the saved state of a key is put
    in front of its rows as a seed, so the recursion continues across batches exactly
    as if all rows had come in one batch.

    Examples
    --------
    >>> fn = ewm_update("x", 0.5, "x_", ["k"])
    >>> batch = pl.DataFrame({"k": ["a", "a"], "x": [1.0, 3.0]})
    >>> out, state = fn(batch, pl.DataFrame(schema={"k": pl.String, "__mean": pl.Float64,
    ...                                              "__var": pl.Float64}))
    >>> out["x_mean"].to_list(), out["x_var"].to_list()
    ([1.0, 2.0], [0.0, 1.0])
    >>> out2, _ = fn(pl.DataFrame({"k": ["a"], "x": [5.0]}), state)
    >>> out2["x_mean"].to_list(), out2["x_var"].to_list()
    ([3.5], [2.75])
    """
    keys = list(keys)
    a = float(alpha)

    def update(batch: pl.DataFrame, state: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        rows = batch.with_row_index("__row")
        values = rows.filter(pl.col(column).is_not_null()).select(
            *keys, "__row", pl.col(column).cast(pl.Float64).alias("__x")
        )
        if "__mean" not in state.columns:
            state = state.with_columns(
                pl.lit(None, pl.Float64).alias("__mean"), pl.lit(None, pl.Float64).alias("__var")
            )
        seeds = state.select(
            *keys,
            pl.lit(None, pl.UInt32).alias("__row"),
            pl.col("__mean").alias("__x"),
            pl.col("__var").alias("__z"),
        )
        chained = pl.concat(
            [seeds, values.with_columns(pl.lit(None, pl.Float64).alias("__z"))],
            how="vertical_relaxed",
        )
        chained = chained.with_columns(
            pl.col("__x").ewm_mean(alpha=a, adjust=False).over(keys).alias("__m")
        )
        previous = pl.col("__m").shift(1).over(keys)
        # Variance recursion v = (1-a)(v_prev + a d^2) is itself an EWMA of (1-a) d^2,
        # seeded with the saved variance (or 0 for a key's very first value).
        z = (
            pl.when(pl.col("__row").is_null())
            .then(pl.col("__z"))
            .when(previous.is_null())
            .then(0.0)
            .otherwise((1 - a) * (pl.col("__x") - previous) ** 2)
        )
        chained = chained.with_columns(z.alias("__z"))
        chained = chained.with_columns(
            pl.col("__z").ewm_mean(alpha=a, adjust=False).over(keys).alias("__v")
        )
        fresh = chained.filter(pl.col("__row").is_not_null())
        out = rows.join(
            fresh.select(
                "__row", pl.col("__m").alias(f"{prefix}mean"), pl.col("__v").alias(f"{prefix}var")
            ),
            on="__row",
            how="left",
        ).drop("__row")
        new_state = chained.group_by(keys, maintain_order=True).agg(
            pl.col("__m").last().alias("__mean"), pl.col("__v").last().alias("__var")
        )
        return out, new_state

    return update
