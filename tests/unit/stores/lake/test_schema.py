"""A new field becomes a nullable column; a value of the wrong type becomes a dead letter."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl

from haeryu.stores.lake import DeltaSink
from haeryu.stream import Pipeline
from haeryu.testing import LocalCluster, run_local


def _run(table: Path, records: list[dict[str, object]]) -> DeltaSink:
    p = Pipeline("readings")
    sink = DeltaSink(table, partition_by=None)
    p.source("in", format="json").to_sink(sink)
    run_local(p, {"in": records}, batch_size=2, cluster=LocalCluster(), checkpoint_every=1)
    return sink


def test_a_new_field_becomes_a_nullable_column(tmp_path: Path) -> None:
    _run(
        tmp_path / "t", [{"id": 1, "v": 1.5}, {"id": 2, "v": 2.5}, {"id": 3, "v": 3.0, "unit": "C"}]
    )
    rows = pl.read_delta(str(tmp_path / "t")).sort("id")
    assert rows["unit"].to_list() == [None, None, "C"]
    assert rows["v"].to_list() == [1.5, 2.5, 3.0]


def test_a_type_conflict_is_a_dead_letter_and_the_others_go_on(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [
        {"id": 1, "n": 10},
        {"id": 2, "n": 20},
        {"id": 3, "n": "lots"},  # the table's n is an integer: this row cannot go in
        {"id": 4, "n": 40},
        {"id": 5, "n": 5.5},  # would lose its fraction as an integer
        {"id": 6, "n": 60},
    ]
    sink = _run(tmp_path / "t", records)
    rows = pl.read_delta(str(tmp_path / "t")).sort("id")
    assert rows.select("id", "n").rows() == [(1, 10), (2, 20), (4, 40), (6, 60)]
    assert rows.schema["n"] == pl.Int64
    dead = pl.read_delta(sink.dead_letters_uri).sort("_offset")
    assert dead["_offset"].to_list() == [2, 4]
    assert dead["error"].to_list() == [
        "column 'n' is Int64 in the table; this value is String: lots",
        "column 'n' is Int64 in the table; this value is Float64: 5.5",
    ]
    assert [json.loads(v)["id"] for v in dead["value"]] == [3, 5]
    assert sink.dead_letters == 2


def test_a_value_that_cannot_be_cast_at_all_is_a_dead_letter(tmp_path: Path) -> None:
    records: list[dict[str, object]] = [
        {"id": 1, "n": 10},
        {"id": 2, "n": 20},
        {"id": 3, "n": {"deep": 1}},  # a struct where the table has an integer
        {"id": 4, "n": None},
    ]
    sink = _run(tmp_path / "t", records)
    rows = pl.read_delta(str(tmp_path / "t")).sort("id")
    assert rows.select("id", "n").rows() == [(1, 10), (2, 20), (4, None)]
    dead = pl.read_delta(sink.dead_letters_uri)
    assert dead["_offset"].to_list() == [2]
    assert dead["error"][0].startswith("column 'n' is Int64 in the table; this value is Struct")


def test_the_warehouse_queries_what_the_sink_wrote(tmp_path: Path) -> None:
    from haeryu.stores.warehouse import Warehouse

    p = Pipeline("readings")
    source = p.source("in", schema={"id": int, "v": float, "ts": int}, timestamp="ts")
    source.to_sink(DeltaSink("readings", root=tmp_path))
    records = [{"id": i, "v": i * 0.5, "ts": 1_700_000_000_000 + i} for i in range(50)]
    run_local(p, {"in": records}, batch_size=10, cluster=LocalCluster(), checkpoint_every=2)
    got = Warehouse(tmp_path).sql(
        "SELECT count(*) AS n, sum(id) AS s, min(event_date) AS d FROM readings"
    )
    assert got.rows() == [(50, sum(range(50)), date(2023, 11, 14))]  # the date of ts
