"""Rollups per key at 1 s and 1 min, checked against a Polars group-by of the raw rows."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest

from haeryu.stores.warehouse import Warehouse
from haeryu.stream import MemorySink, Pipeline, PlanError, run_local
from haeryu.testing import LocalCluster
from haeryu.timeseries import rollups

SCHEMA = {"sensor": str, "value": float, "ts": int}


def readings(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    ts = 1_700_000_000_000
    rows = []
    for _ in range(n):
        ts += rng.choice([0, 7, 50, 400, 1500, 20_000])  # repeats, sub-second, long gaps
        rows.append(
            {"sensor": f"s{rng.randrange(4)}", "value": round(rng.gauss(20, 5), 3), "ts": ts}
        )
    return rows


def reference(rows: list[dict[str, object]], every_ms: int) -> pl.DataFrame:
    raw = pl.DataFrame(rows, schema={"sensor": pl.String, "value": pl.Float64, "ts": pl.Int64})
    return (
        raw.with_columns(start=(pl.col("ts") // every_ms) * every_ms)
        .group_by("sensor", "start", maintain_order=True)
        .agg(
            count=pl.col("value").count(),
            min=pl.col("value").min(),
            max=pl.col("value").max(),
            mean=pl.col("value").mean(),
            last=pl.col("value").last(),  # input order = event-time order, ties by offset
        )
        .with_columns(
            window_start=pl.from_epoch("start", time_unit="ms").dt.replace_time_zone("UTC"),
            window_end=pl.from_epoch(
                pl.col("start") + every_ms, time_unit="ms"
            ).dt.replace_time_zone("UTC"),
        )
        .drop("start")
    )


COLUMNS = ["sensor", "window_start", "window_end", "count", "min", "max", "mean", "last"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_second_and_one_minute_rollups_match_polars(seed: int) -> None:
    rows = readings(3000, seed)
    p = Pipeline("rollups")
    source = p.source("readings", schema=SCHEMA, timestamp="ts")
    per_second, per_minute = MemorySink(), MemorySink()
    rollups(source, key="sensor", value="value", sinks={"1s": per_second, "1m": per_minute})
    # Every key lives in one of two partitions, as a keyed producer would place it.
    run_local(
        p,
        {"readings": rows},
        batch_size=250,
        partitions=2,
        keys={"readings": [str(r["sensor"]) for r in rows]},
    )
    for sink, every_ms in ((per_second, 1000), (per_minute, 60_000)):
        got = sink.frame().select(COLUMNS).sort("sensor", "window_start")
        want = reference(rows, every_ms).select(COLUMNS).sort("sensor", "window_start")
        assert got.height == want.height
        assert got.drop("mean").equals(want.drop("mean"))
        assert (got["mean"] - want["mean"]).abs().max() < 1e-9  # type: ignore[operator]
    # A 1 min row summarises many raw rows: that is what dashboards save.
    assert per_minute.frame().height < per_second.frame().height < len(rows)


def test_rollups_written_to_the_lake_are_read_by_the_warehouse(tmp_path: Path) -> None:
    rows = readings(2000, 7)
    p = Pipeline("rollups-lake")
    source = p.source("readings", schema=SCHEMA, timestamp="ts")
    rollups(source, key="sensor", value="value", lake="readings", lake_root=tmp_path)
    run_local(
        p,
        {"readings": rows},
        batch_size=250,
        partitions=2,
        keys={"readings": [str(r["sensor"]) for r in rows]},
        cluster=LocalCluster(),
        checkpoint_every=2,
    )
    with Warehouse(tmp_path) as warehouse:
        assert {"readings_1s", "readings_1m"} <= set(warehouse.tables())
        for table, every_ms in (("readings_1s", 1000), ("readings_1m", 60_000)):
            got = warehouse.sql(f"SELECT * FROM {table}").select(COLUMNS)
            want = reference(rows, every_ms).select(COLUMNS)
            # every closed window once (each window closes once; nothing was replayed)
            assert (
                got.sort("sensor", "window_start")
                .drop("mean")
                .equals(want.sort("sensor", "window_start").drop("mean"))
            )
        # what a dashboard asks: minutes of history per sensor from a few rows
        minutes = warehouse.sql(
            "SELECT sensor, count(*) AS minutes, sum(count) AS readings FROM readings_1m"
            " GROUP BY sensor ORDER BY sensor"
        )
    assert minutes["readings"].sum() == len(rows)
    assert minutes["minutes"].sum() == want.height < len(rows)


def test_several_value_columns_get_prefixed_statistics_and_go_to_topics() -> None:
    rows = [
        {"sensor": "a", "t": 1.0, "h": 40.0, "ts": 0},
        {"sensor": "a", "t": 3.0, "h": 42.0, "ts": 500},
        {"sensor": "a", "t": 5.0, "h": 44.0, "ts": 1200},
    ]
    p = Pipeline("multi")
    source = p.source(
        "readings", schema={"sensor": str, "t": float, "h": float, "ts": int}, timestamp="ts"
    )
    rollups(source, key="sensor", value=["t", "h"], resolutions=["1s"], topics={"1s": "rollup-1s"})
    out = run_local(p, {"readings": rows}).topic("rollup-1s").sort("window_start")
    assert out.select("t_count", "t_min", "t_max", "t_mean", "t_last", "h_last").to_dicts() == [
        {"t_count": 2, "t_min": 1.0, "t_max": 3.0, "t_mean": 2.0, "t_last": 3.0, "h_last": 42.0},
        {"t_count": 1, "t_min": 5.0, "t_max": 5.0, "t_mean": 5.0, "t_last": 5.0, "h_last": 44.0},
    ]


def test_a_sink_for_a_resolution_not_computed_is_refused() -> None:
    p = Pipeline("bad")
    source = p.source("readings", schema=SCHEMA, timestamp="ts")
    with pytest.raises(PlanError, match=r"no resolution 5m \(the resolutions are 1s, 1m\)"):
        rollups(source, key="sensor", value="value", sinks={"5m": MemorySink()})


def test_a_misspelled_value_column_fails_while_declaring() -> None:
    p = Pipeline("typo")
    source = p.source("readings", schema=SCHEMA, timestamp="ts")
    with pytest.raises(PlanError, match="valeu"):
        rollups(source, key="sensor", value="valeu")
