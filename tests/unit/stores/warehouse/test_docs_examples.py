"""The time-series examples of docs/warehouse.md, run as written, against Polars references."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake
from polars.testing import assert_frame_equal

from haeryu.stores.warehouse import Warehouse

DOC = Path(__file__).parents[4] / "docs" / "warehouse.md"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def examples() -> dict[str, str]:
    blocks = re.findall(r"```sql\n-- example: (\S+)\n(.*?)```", DOC.read_text(), re.DOTALL)
    return dict(blocks)


@pytest.fixture(scope="module")
def raw() -> pl.DataFrame:
    rng = random.Random(11)
    rows = []
    for sensor in ("s0", "s1", "s2"):
        t = START - dt.timedelta(minutes=3)  # some readings before the hour, to be left out
        while t < START + HOUR + dt.timedelta(minutes=2):
            rows.append({"sensor": sensor, "ts": t, "temperature": round(rng.gauss(20, 3), 2)})
            # Irregular sampling, with gaps of several minutes for gap filling to fill.
            t += dt.timedelta(seconds=rng.choice([1, 5, 20, 45, 200, 400]))
    return pl.DataFrame(
        rows,
        schema={"sensor": pl.String, "ts": pl.Datetime("us", "UTC"), "temperature": pl.Float64},
    )


@pytest.fixture(scope="module")
def warehouse(raw: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    lake = tmp_path_factory.mktemp("lake")
    write_deltalake(str(lake / "readings"), raw.to_arrow())
    return Warehouse(lake)


def test_the_doc_has_the_four_examples() -> None:
    assert set(examples()) == {"time-buckets", "last-value", "moving-average", "gap-filling"}


def in_hour(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.filter(pl.col("ts") >= START, pl.col("ts") < START + HOUR)


def test_time_buckets(warehouse: Warehouse, raw: pl.DataFrame) -> None:
    want = (
        in_hour(raw)
        .group_by("sensor", minute=pl.col("ts").dt.truncate("1m"))
        .agg(
            n=pl.len().cast(pl.Int64),
            avg_temp=pl.col("temperature").mean(),
            max_temp=pl.col("temperature").max(),
        )
        .sort("sensor", "minute")
    )
    got = warehouse.sql(examples()["time-buckets"])
    assert_frame_equal(got, want, check_dtypes=False)


def test_last_value_per_key(warehouse: Warehouse, raw: pl.DataFrame) -> None:
    want = (
        raw.sort("ts")
        .group_by("sensor")
        .agg(ts=pl.col("ts").last(), temperature=pl.col("temperature").last())
        .sort("sensor")
    )
    assert_frame_equal(warehouse.sql(examples()["last-value"]), want, check_dtypes=False)


def test_moving_average(warehouse: Warehouse, raw: pl.DataFrame) -> None:
    want = raw.sort("sensor", "ts").with_columns(
        avg_5m=pl.col("temperature")
        .rolling_mean_by("ts", window_size="5m", closed="both")
        .over("sensor")
    )
    got = warehouse.sql(examples()["moving-average"])
    assert_frame_equal(got, want, check_dtypes=False)


def test_gap_filling(warehouse: Warehouse, raw: pl.DataFrame) -> None:
    minutes = pl.DataFrame(
        {"minute": pl.datetime_range(START, START + HOUR, "1m", closed="left", eager=True)}
    ).with_columns(pl.col("minute").dt.cast_time_unit("us"))
    per_minute = raw.group_by("sensor", minute=pl.col("ts").dt.truncate("1m")).agg(
        n=pl.len().cast(pl.Int64), avg_temp=pl.col("temperature").mean()
    )
    want = (
        raw.select("sensor")
        .unique()
        .join(minutes, how="cross")
        .join(per_minute, on=["sensor", "minute"], how="left")
        .sort("sensor", "minute")
        .with_columns(
            n=pl.col("n").fill_null(0),
            filled_temp=pl.col("avg_temp").forward_fill().over("sensor"),
        )
        .select("sensor", "minute", "n", "avg_temp", "filled_temp")
    )
    got = warehouse.sql(examples()["gap-filling"])
    assert got.height == 3 * 60
    assert (got["n"] == 0).sum() > 0  # there were gaps to fill
    assert_frame_equal(got, want, check_dtypes=False)
