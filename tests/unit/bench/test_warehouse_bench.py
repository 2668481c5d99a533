"""The warehouse benchmark: its data set, its queries' answers and its report, at a tiny size."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from haeryu.bench import warehouse as bench
from haeryu.stores.warehouse import Warehouse


def test_generated_readings_are_time_ordered_over_one_hour_and_cached(tmp_path: Path) -> None:
    said: list[str] = []
    lake = bench.prepare(tmp_path, 30_000, 50, log=said.append)
    frame = pl.read_delta(str(lake / "readings"))
    assert frame.height == 30_000
    assert frame["ts"].is_sorted()
    assert frame["ts"].min() == bench.START
    assert (frame["ts"].max() - bench.START).total_seconds() < 3600  # type: ignore[operator]
    assert frame["sensor"].n_unique() == 50
    assert said[-1].startswith("generated 30,000 rows")
    assert bench.prepare(tmp_path, 30_000, 50, log=said.append) == lake
    assert said[-1].startswith("using cached data")


def test_the_queries_answer_what_they_claim(tmp_path: Path) -> None:
    lake = bench.prepare(tmp_path, 20_000, 20, log=lambda _: None)
    raw = pl.read_delta(str(lake / "readings"))
    wh = Warehouse(lake)
    per_minute = wh.sql(bench.QUERIES["per-key per-minute"])
    assert per_minute["n"].sum() == raw.height
    assert per_minute.height == raw.group_by("sensor", pl.col("ts").dt.truncate("1m")).len().height
    last = wh.sql(bench.QUERIES["last value per key"]).sort("sensor")
    want = raw.group_by("sensor").agg(pl.col("temperature").last()).sort("sensor")
    assert last["temperature"].to_list() == want["temperature"].to_list()
    assert wh.sql(bench.QUERIES["time bucket + gap fill"]).height == 20 * 60


def test_the_report_prints_every_query(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.run(rows=10_000, sensors=10, repeat=2, cache=tmp_path, threads=1) == 0
    out = capsys.readouterr().out
    for name in bench.QUERIES:
        assert name in out
    assert "p50 ms" in out and "DuckDB threads 1" in out
    assert "is checked at --rows 10000000" in out
