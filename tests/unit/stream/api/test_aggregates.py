"""Parsing Polars aggregate expressions, and the accuracy of approximate quantiles."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.stream.api.aggregates import (
    SKETCH_ALPHA,
    approx_quantile,
    count,
    parse,
    sketch_buckets,
    sketch_quantiles,
)
from haeryu.stream.errors import PlanError


def test_expressions_become_aggregates() -> None:
    specs = parse(
        {
            "n": pl.len(),
            "c": pl.col("t").count(),
            "m": (pl.col("t") * 2).mean(),
            "v": pl.col("t").var(ddof=0),
            "p": pl.col("t").quantile(0.95),
            "med": pl.col("t").median(),
        },
        [pl.col("t").max().alias("hottest"), pl.col("t").first()],
    )
    by_name = {a.name: a for a in specs}
    assert by_name["n"].kind == "len"
    assert by_name["v"].kind == "var" and by_name["v"].ddof == 0
    assert by_name["p"].q == 0.95 and by_name["med"].q == 0.5
    assert by_name["hottest"].kind == "max"
    assert by_name["t"].kind == "first"
    frame = pl.DataFrame({"t": [1.0, 2.0]})
    assert frame.select(by_name["m"].input).to_series().to_list() == [2.0, 4.0]
    assert count("t").name == "t_count" and approx_quantile("t", 0.5).kind == "quantile"


@pytest.mark.parametrize("expr", [pl.col("t").n_unique(), pl.col("t") + 1, pl.col("t").mode()])
def test_unsupported_expressions_are_refused_with_the_list(expr: pl.Expr) -> None:
    with pytest.raises(PlanError, match="count, sum, min, max"):
        parse({"x": expr})


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(PlanError, match="unique"):
        parse({}, [pl.col("t").max(), pl.col("t").max()])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False).filter(lambda x: x == 0 or abs(x) > 1e-9),
        min_size=1,
        max_size=300,
    ),
    st.floats(0, 1),
)
def test_sketch_quantiles_are_within_the_relative_error(values: list[float], q: float) -> None:
    frame = pl.DataFrame({"g": [0] * len(values), "x": values})
    sign, index = sketch_buckets(pl.col("x"))
    buckets = (
        frame.select("g", pl.lit(0, pl.Int16).alias("__col"), sign, index)
        .group_by("g", "__col", "__sign", "__idx")
        .agg(pl.len().cast(pl.Int64).alias("__cnt"))
    )
    estimate = sketch_quantiles(buckets, ["g"], [("est", 0, q)])["__q_est"][0]
    exact = sorted(values)[round(q * (len(values) - 1))]
    assert abs(estimate - exact) <= SKETCH_ALPHA * abs(exact) * 1.0001 + 1e-9
