"""Functions for ``update_state``: the shape they have, and the built-in ones.

A state function gets the rows of one partition of a batch and the current state rows of
their keys, and returns (output rows, new state of those keys).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

StateFn = Callable[[pl.DataFrame, pl.DataFrame], tuple[pl.DataFrame, pl.DataFrame]]
"""(batch rows, current state of their keys) -> (output rows, new state of those keys)."""

# Scratch columns of ewm_update (internal: they start with INTERNAL_PREFIX).
_MEAN = "__mean"
_MEAN_NOW = "__m"
_ROW = "__row"
_VAR = "__var"
_VAR_NOW = "__v"
_X = "__x"
_Z = "__z"


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
        rows = batch.with_row_index(_ROW)
        values = rows.filter(pl.col(column).is_not_null()).select(
            *keys, _ROW, pl.col(column).cast(pl.Float64).alias(_X)
        )
        if _MEAN not in state.columns:
            state = state.with_columns(
                pl.lit(None, pl.Float64).alias(_MEAN), pl.lit(None, pl.Float64).alias(_VAR)
            )
        seeds = state.select(
            *keys,
            pl.lit(None, pl.UInt32).alias(_ROW),
            pl.col(_MEAN).alias(_X),
            pl.col(_VAR).alias(_Z),
        )
        chained = pl.concat(
            [seeds, values.with_columns(pl.lit(None, pl.Float64).alias(_Z))],
            how="vertical_relaxed",
        )
        chained = chained.with_columns(
            pl.col(_X).ewm_mean(alpha=a, adjust=False).over(keys).alias(_MEAN_NOW)
        )
        previous = pl.col(_MEAN_NOW).shift(1).over(keys)
        # Variance recursion v = (1-a)(v_prev + a d^2) is itself an EWMA of (1-a) d^2,
        # seeded with the saved variance (or 0 for a key's very first value).
        z = (
            pl.when(pl.col(_ROW).is_null())
            .then(pl.col(_Z))
            .when(previous.is_null())
            .then(0.0)
            .otherwise((1 - a) * (pl.col(_X) - previous) ** 2)
        )
        chained = chained.with_columns(z.alias(_Z))
        chained = chained.with_columns(
            pl.col(_Z).ewm_mean(alpha=a, adjust=False).over(keys).alias(_VAR_NOW)
        )
        fresh = chained.filter(pl.col(_ROW).is_not_null())
        out = rows.join(
            fresh.select(
                _ROW,
                pl.col(_MEAN_NOW).alias(f"{prefix}mean"),
                pl.col(_VAR_NOW).alias(f"{prefix}var"),
            ),
            on=_ROW,
            how="left",
        ).drop(_ROW)
        new_state = chained.group_by(keys, maintain_order=True).agg(
            pl.col(_MEAN_NOW).last().alias(_MEAN), pl.col(_VAR_NOW).last().alias(_VAR)
        )
        return out, new_state

    return update
