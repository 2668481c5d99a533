"""Window aggregates as mergeable partial states, computed and merged with Polars.

A window's result is built across micro-batches, so every aggregate is split into
*partials* that can be computed for a batch and merged with the partials already held
in state: count and sum add up, min and max take the extreme, variance merges with
Chan's formula (count, sum and sum of squared deviations), first and last keep the
value with the earliest/latest event time, and quantiles keep a DDSketch (log-spaced
buckets whose counts add up).  Partials are shared: ``mean`` and ``std`` of the same
column use the same count and sum columns.

Users write Polars expressions (``col("t").mean()``, ``pl.len()``,
``col("t").quantile(0.99)``); :func:`parse` turns them into :class:`Aggregate` specs.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from haeryu.stream.api.choices import AggregateKind
from haeryu.stream.columns import (
    INTERNAL_PREFIX,
    ROW_COUNT,
    SKETCH_COLUMN,
    SKETCH_COUNT,
    SKETCH_INDEX,
    SKETCH_SIGN,
)
from haeryu.stream.errors import PlanError

# Scratch columns of this module (internal: they start with INTERNAL_PREFIX).
_CUMULATIVE = "__cum"
_TOTAL = "__tot"
_VALUE = "__v"


SKETCH_ALPHA = 0.01
"""Relative accuracy of approximate quantiles (DDSketch): estimates are within 1 %."""
_GAMMA = (1 + SKETCH_ALPHA) / (1 - SKETCH_ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_ZERO = 1e-12  # magnitudes below this land in the zero bucket


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One output column of a window: an aggregate function over an input expression.

    Attributes
    ----------
    name
        Output column name.
    kind
        The aggregate function.
    input
        Expression evaluated per record (``None`` for ``len``).
    ddof
        Delta degrees of freedom for ``var``/``std``.
    q
        Quantile in [0, 1] for ``quantile`` (approximate, see :data:`SKETCH_ALPHA`).
    """

    name: str
    kind: AggregateKind
    input: pl.Expr | None = None
    ddof: int = 1
    q: float = 0.5


def count(column: str, *, name: str | None = None) -> Aggregate:
    """Number of non-null values of ``column``."""
    return Aggregate(name or f"{column}_count", "count", pl.col(column))


def approx_quantile(column: str, q: float, *, name: str | None = None) -> Aggregate:
    """Approximate ``q``-quantile of ``column`` (DDSketch, 1 % relative error)."""
    return Aggregate(name or f"{column}_q{q:g}", "quantile", pl.col(column), q=q)


_AGG_KINDS: dict[str, AggregateKind] = {
    "Count": "count",
    "Sum": "sum",
    "Min": "min",
    "Max": "max",
    "Mean": "mean",
    "Var": "var",
    "Std": "std",
    "First": "first",
    "Last": "last",
    "Median": "quantile",
}


def parse(
    named: Mapping[str, pl.Expr | Aggregate], positional: Sequence[pl.Expr] = ()
) -> list[Aggregate]:
    """Turn aggregate expressions into :class:`Aggregate` specs.

    Parameters
    ----------
    named
        Output name to expression, e.g. ``avg_temp=col("temperature").mean()``.
    positional
        Expressions named by their own alias or input column.

    Examples
    --------
    >>> import polars as pl
    >>> [a.kind for a in parse({"n": pl.len(), "avg": pl.col("t").mean()})]
    ['len', 'mean']
    >>> parse({}, [pl.col("t").quantile(0.9).alias("p90")])[0].q
    0.9
    """
    out: list[Aggregate] = []
    for item in positional:
        out.append(_parse_one(None, item))
    for name, value in named.items():
        out.append(_parse_one(name, value))
    names = [a.name for a in out]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise PlanError(f"aggregate names must be unique; repeated: {sorted(duplicates)}")
    return out


def _parse_one(name: str | None, expr: pl.Expr | Aggregate) -> Aggregate:
    if isinstance(expr, Aggregate):
        return expr if name is None else Aggregate(name, expr.kind, expr.input, expr.ddof, expr.q)
    if not isinstance(expr, pl.Expr):
        raise PlanError(f"aggregate {name!r}: expected a Polars expression, got {expr!r}")
    tree: Any = json.loads(expr.meta.serialize(format="json"))
    if isinstance(tree, dict) and "Alias" in tree:
        tree, alias = tree["Alias"]
        name = name or alias
    what = f"aggregate {name or expr}"
    if tree == "Len":
        return Aggregate(name or "len", "len")
    if isinstance(tree, dict) and "Agg" in tree:
        ((func, body),) = tree["Agg"].items()
        if func not in _AGG_KINDS:
            raise PlanError(f"{what}: {func} is not a window aggregate; {_SUPPORTED}")
        kind = _AGG_KINDS[func]
        ddof, q = 1, 0.5
        if isinstance(body, list):  # Var/Std: [input, ddof]
            body, ddof = body[0], int(body[1])
        elif isinstance(body, dict) and "input" in body:
            if func == "Count" and body.get("include_nulls"):
                kind = "len"
            body = body["input"]
        source = _expr(body)
        return Aggregate(name or _output_name(source), kind, source, ddof, q)
    function = tree.get("Function") if isinstance(tree, dict) else None
    if (
        function
        and isinstance(function.get("function"), dict)
        and "Quantile" in function["function"]
    ):
        source_tree, q_tree = function["input"]
        level = _literal_float(q_tree)
        if level is None or not 0 <= level <= 1:
            raise PlanError(f"{what}: the quantile must be a number between 0 and 1")
        source = _expr(source_tree)
        return Aggregate(name or _output_name(source), "quantile", source, q=level)
    raise PlanError(f"{what}: not a window aggregate; {_SUPPORTED}")


_SUPPORTED = (
    "use count, sum, min, max, mean, var, std, first, last, quantile/median or pl.len(), "
    "e.g. col('temperature').mean()"
)


def _expr(tree: Any) -> pl.Expr:
    return pl.Expr.deserialize(io.StringIO(json.dumps(tree)), format="json")


def _output_name(expr: pl.Expr) -> str:
    try:
        return expr.meta.output_name()
    except pl.exceptions.PolarsError as exc:
        raise PlanError(f"name the aggregate over {expr}: .agg(name=...)") from exc


def _literal_float(tree: Any) -> float | None:
    try:
        value = tree["Literal"]
        while isinstance(value, dict):
            ((_, value),) = value.items()
        return float(value)
    except (KeyError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- partials


@dataclass(slots=True)
class Partials:
    """The partial columns a list of aggregates needs, shared where possible.

    ``inputs[j]`` is an input expression; partial columns are named after the atom and
    the input index (``__n0`` count of input 0, ``__s0`` its sum, ...).
    """

    aggregates: list[Aggregate]
    inputs: list[pl.Expr] = field(default_factory=list)
    atoms: set[tuple[str, int]] = field(default_factory=set)
    sketched: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        keys: list[str] = []
        for agg in self.aggregates:
            if agg.kind == "len":
                self.atoms.add(("rows", -1))
                continue
            assert agg.input is not None
            key = agg.input.meta.serialize(format="json")
            if key not in keys:
                keys.append(key)
                self.inputs.append(agg.input)
            j = keys.index(key)
            for atom in _ATOMS[agg.kind]:
                self.atoms.add((atom, j))
            if agg.kind == "quantile" and j not in self.sketched:
                self.sketched.append(j)

    def input_columns(self) -> list[pl.Expr]:
        """Expressions adding the inputs as ``__in{j}`` columns."""
        return [e.alias(f"{INTERNAL_PREFIX}in{j}") for j, e in enumerate(self.inputs)]

    def batch(self, time: str, seq: str) -> list[pl.Expr]:
        """Aggregations computing the partials of a group of input rows."""
        exprs: list[pl.Expr] = []
        for atom, j in sorted(self.atoms):
            x = pl.col(f"{INTERNAL_PREFIX}in{j}")
            if atom == "rows":
                exprs.append(pl.len().cast(pl.Int64).alias(ROW_COUNT))
            elif atom == "n":
                exprs.append(x.count().cast(pl.Int64).alias(f"{INTERNAL_PREFIX}n{j}"))
            elif atom == "s":
                exprs.append(x.sum().alias(f"{INTERNAL_PREFIX}s{j}"))
            elif atom == "m2":
                exprs.append(
                    (x.cast(pl.Float64).var(ddof=0) * x.count())
                    .fill_null(0.0)
                    .alias(f"{INTERNAL_PREFIX}m2{j}")
                )
            elif atom == "min":
                exprs.append(x.min().alias(f"{INTERNAL_PREFIX}min{j}"))
            elif atom == "max":
                exprs.append(x.max().alias(f"{INTERNAL_PREFIX}max{j}"))
            elif atom in ("first", "last"):
                order = [pl.col(time), pl.col(seq)]
                pick = (lambda e: e.first()) if atom == "first" else (lambda e: e.last())
                exprs += [
                    pick(x.sort_by(order)).alias(f"{INTERNAL_PREFIX}{atom}{j}"),
                    pick(pl.col(time).sort_by(order)).alias(f"{INTERNAL_PREFIX}{atom}t{j}"),
                    pick(pl.col(seq).sort_by(order)).alias(f"{INTERNAL_PREFIX}{atom}o{j}"),
                ]
        return exprs

    def merge(self) -> list[pl.Expr]:
        """Aggregations merging several partial rows of one group into one."""
        exprs: list[pl.Expr] = []
        for atom, j in sorted(self.atoms):
            if atom == "rows":
                exprs.append(pl.col(ROW_COUNT).sum())
            elif atom in ("n", "s"):
                exprs.append(pl.col(f"{INTERNAL_PREFIX}{atom}{j}").sum())
            elif atom == "m2":
                n, s = (
                    pl.col(f"{INTERNAL_PREFIX}n{j}"),
                    pl.col(f"{INTERNAL_PREFIX}s{j}").cast(pl.Float64),
                )
                mean_all = s.sum() / n.sum()
                spread = pl.when(n > 0).then(n * (s / n - mean_all) ** 2).otherwise(0.0)
                exprs.append(
                    (pl.col(f"{INTERNAL_PREFIX}m2{j}") + spread)
                    .sum()
                    .alias(f"{INTERNAL_PREFIX}m2{j}")
                )
            elif atom in ("min", "max"):
                column = pl.col(f"{INTERNAL_PREFIX}{atom}{j}")
                exprs.append(column.min() if atom == "min" else column.max())
            elif atom in ("first", "last"):
                order = [
                    pl.col(f"{INTERNAL_PREFIX}{atom}t{j}"),
                    pl.col(f"{INTERNAL_PREFIX}{atom}o{j}"),
                ]
                for part in ("", "t", "o"):
                    column = pl.col(f"{INTERNAL_PREFIX}{atom}{part}{j}").sort_by(order)
                    exprs.append(column.first() if atom == "first" else column.last())
        return exprs

    def finish(self) -> list[pl.Expr]:
        """Expressions turning merged partials into the aggregate output columns."""
        exprs: list[pl.Expr] = []
        for agg in self.aggregates:
            if agg.kind == "len":
                exprs.append(pl.col(ROW_COUNT).alias(agg.name))
                continue
            assert agg.input is not None
            j = [e.meta.serialize(format="json") for e in self.inputs].index(
                agg.input.meta.serialize(format="json")
            )
            n, s = pl.col(f"{INTERNAL_PREFIX}n{j}"), pl.col(f"{INTERNAL_PREFIX}s{j}")
            if agg.kind == "count":
                out = n
            elif agg.kind == "sum":
                out = s
            elif agg.kind in ("min", "max", "first", "last"):
                out = pl.col(f"{INTERNAL_PREFIX}{agg.kind}{j}")
            elif agg.kind == "mean":
                out = pl.when(n > 0).then(s.cast(pl.Float64) / n)
            elif agg.kind in ("var", "std"):
                var = pl.when(n > agg.ddof).then(pl.col(f"{INTERNAL_PREFIX}m2{j}") / (n - agg.ddof))
                out = var.sqrt() if agg.kind == "std" else var
            else:  # quantiles are filled in from the sketch frame
                out = pl.col(f"{INTERNAL_PREFIX}q_{agg.name}")
            exprs.append(out.alias(agg.name))
        return exprs

    def quantiles(self) -> list[tuple[str, int, float]]:
        """(output name, sketched input index, q) of every quantile aggregate."""
        keys = [e.meta.serialize(format="json") for e in self.inputs]
        return [
            (a.name, keys.index(a.input.meta.serialize(format="json")), a.q)
            for a in self.aggregates
            if a.kind == "quantile" and a.input is not None
        ]


_ATOMS: dict[str, tuple[str, ...]] = {
    "count": ("n",),
    "sum": ("s",),
    "min": ("min",),
    "max": ("max",),
    "mean": ("n", "s"),
    "var": ("n", "s", "m2"),
    "std": ("n", "s", "m2"),
    "first": ("first",),
    "last": ("last",),
    "quantile": (),
}


# --------------------------------------------------------------------------- sketches


def sketch_buckets(value: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """DDSketch bucket of each value: (sign, index); sign 0 is the zero bucket."""
    magnitude = value.cast(pl.Float64).abs()
    sign = pl.when(magnitude < _ZERO).then(0).when(value > 0).then(1).otherwise(-1).cast(pl.Int8)
    index = (
        pl.when(magnitude < _ZERO)
        .then(0)
        .otherwise((magnitude.log() / _LOG_GAMMA).ceil())
        .cast(pl.Int32)
    )
    return sign.alias(SKETCH_SIGN), index.alias(SKETCH_INDEX)


def bucket_value(sign: pl.Expr, index: pl.Expr) -> pl.Expr:
    """Representative value of a bucket: within :data:`SKETCH_ALPHA` of its members."""
    return sign.cast(pl.Float64) * (
        2.0 * (index.cast(pl.Float64) * _LOG_GAMMA).exp() / (_GAMMA + 1)
    )


def sketch_quantiles(
    sketches: pl.DataFrame, groups: list[str], wanted: Sequence[tuple[str, int, float]]
) -> pl.DataFrame:
    """Estimate quantiles from sketch rows ``groups + [__col, __sign, __idx, __cnt]``.

    The estimate for ``q`` is the representative of the bucket holding the element of
    rank ``round(q * (n - 1))`` in sorted order.
    """
    ordered = sketches.with_columns(
        bucket_value(pl.col(SKETCH_SIGN), pl.col(SKETCH_INDEX)).alias(_VALUE)
    ).sort([*groups, SKETCH_COLUMN, _VALUE])
    ordered = ordered.with_columns(
        pl.col(SKETCH_COUNT).cum_sum().over([*groups, SKETCH_COLUMN]).alias(_CUMULATIVE),
        pl.col(SKETCH_COUNT).sum().over([*groups, SKETCH_COLUMN]).alias(_TOTAL),
    )
    result: pl.DataFrame | None = None
    for name, j, q in wanted:
        rank = ((pl.col(_TOTAL) - 1).cast(pl.Float64) * q).round().cast(pl.Int64)
        picked = (
            ordered.filter((pl.col(SKETCH_COLUMN) == j) & (pl.col(_CUMULATIVE) > rank))
            .group_by(groups, maintain_order=True)
            .agg(pl.col(_VALUE).first().alias(f"{INTERNAL_PREFIX}q_{name}"))
        )
        result = (
            picked
            if result is None
            else result.join(picked, on=groups, how="full", coalesce=True, nulls_equal=True)
        )
    assert result is not None
    return result
