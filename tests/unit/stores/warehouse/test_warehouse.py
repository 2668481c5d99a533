"""The warehouse over Delta tables written directly with deltalake."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from haeryu.stores.warehouse import QueryError, TableError, Warehouse


def write(root: Path, name: str, frame: pl.DataFrame, mode: str = "append") -> None:
    write_deltalake(str(root / name), frame.to_arrow(), mode=mode)  # type: ignore[arg-type]


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    write(root, "readings", pl.DataFrame({"sensor": ["a", "b", "a"], "value": [1.0, 2.0, 3.0]}))
    write(root, "machines", pl.DataFrame({"sensor": ["a", "b"], "site": ["x", "y"]}))
    return root


def test_every_table_is_a_view_and_results_are_polars(lake: Path) -> None:
    wh = Warehouse(lake)
    assert wh.tables() == {"machines": ["sensor", "site"], "readings": ["sensor", "value"]}
    out = wh.sql(
        "SELECT m.site, sum(r.value) AS total FROM readings r JOIN machines m USING (sensor)"
        " GROUP BY m.site ORDER BY m.site"
    )
    assert isinstance(out, pl.DataFrame)
    assert out.to_dicts() == [{"site": "x", "total": 4.0}, {"site": "y", "total": 2.0}]


def test_each_query_reads_the_latest_version_and_new_tables(lake: Path) -> None:
    wh = Warehouse(lake)
    assert wh.sql("SELECT count(*) AS n FROM readings")["n"][0] == 3
    write(lake, "readings", pl.DataFrame({"sensor": ["c"], "value": [9.0]}))
    assert wh.sql("SELECT count(*) AS n FROM readings")["n"][0] == 4
    write(lake, "readings", pl.DataFrame({"sensor": ["z"], "value": [0.0]}), mode="overwrite")
    assert wh.sql("SELECT sensor FROM readings")["sensor"].to_list() == ["z"]
    write(lake, "alerts", pl.DataFrame({"level": [1]}))
    assert wh.sql("SELECT level FROM alerts")["level"].to_list() == [1]


@pytest.mark.parametrize(
    ("parquet_reader", "scan"), [(True, "READ_PARQUET"), (False, "PYTHON_ARROW_SCAN")]
)
def test_filters_and_projections_reach_the_scan(
    lake: Path, parquet_reader: bool, scan: str
) -> None:
    wh = Warehouse(lake, parquet_reader=parquet_reader)
    assert wh.scans()["readings"] == ("parquet" if parquet_reader else "dataset")
    plan = "\n".join(
        str(row[1])
        for row in wh.connection.sql(
            "EXPLAIN SELECT value FROM readings WHERE sensor = 'a'"
        ).fetchall()
    )
    # The scan itself gets the filter and the one column: nothing above it re-filters.
    assert f"Function: {scan}" in plan
    assert re.search(r"Filters: \"?sensor\"? = 'a'", plan)
    assert "Projections: value" in plan
    assert "FILTER" not in plan


def test_unknown_table_lists_the_tables_and_points_at_the_name(lake: Path) -> None:
    sql = "SELECT *\nFROM readngs WHERE value > 1"
    with pytest.raises(QueryError) as caught:
        Warehouse(lake).sql(sql)
    message = str(caught.value)
    assert "unknown table 'readngs' (did you mean 'readings'?)" in message
    assert "LINE 2: FROM readngs WHERE value > 1\n" + " " * 13 + "^^^^^^^" in message
    assert f"tables in the lake {lake}: machines, readings" in message
    assert caught.value.position == sql.index("readngs")


def test_unknown_column_suggests_the_nearest(lake: Path) -> None:
    sql = "SELECT sensor, valeu FROM readings"
    with pytest.raises(QueryError) as caught:
        Warehouse(lake).sql(sql)
    message = str(caught.value)
    assert "unknown column 'valeu' (did you mean 'value'?)" in message
    assert "LINE 1: SELECT sensor, valeu FROM readings\n" + " " * 23 + "^^^^^" in message
    assert caught.value.position == sql.index("valeu")


def test_syntax_error_keeps_duckdbs_caret(lake: Path) -> None:
    with pytest.raises(QueryError) as caught:
        Warehouse(lake).sql("SELEC 1")
    assert "LINE 1: SELEC 1" in str(caught.value)
    assert "^" in str(caught.value)


def test_a_corrupt_log_entry_names_the_file_and_spares_other_tables(lake: Path) -> None:
    write(lake, "readings", pl.DataFrame({"sensor": ["c"], "value": [9.0]}))
    commit = lake / "readings" / "_delta_log" / f"{1:020d}.json"
    good = commit.read_bytes()
    commit.write_text('{"add": {"path": "x.parquet", ')  # a torn write
    wh = Warehouse(lake)
    assert wh.sql("SELECT count(*) AS n FROM machines")["n"][0] == 2
    with pytest.raises(TableError) as caught:
        wh.sql("SELECT * FROM readings")
    message = str(caught.value)
    assert "lake table 'readings'" in message
    assert str(commit) in message
    assert "What to do" in message and "Restore that file" in message
    # The data files are untouched: once the commit file is restored, every row is back.
    commit.write_bytes(good)
    assert wh.sql("SELECT count(*) AS n FROM readings")["n"][0] == 4


def test_no_extension_is_loaded_or_downloaded(lake: Path, tmp_path: Path) -> None:
    # Run in a process with no route to the network and an empty extension directory:
    # the query must not need either.
    code = (
        "import sys; from haeryu.stores.warehouse import Warehouse;"
        f"wh = Warehouse({str(lake)!r});"
        f"wh.connection.execute(\"SET extension_directory = '{tmp_path / 'ext'}'\");"
        "print(wh.sql('SELECT count(*) AS n FROM readings')['n'][0]);"
        'print(wh.connection.sql("SELECT count(*) FROM duckdb_extensions()'
        " WHERE loaded AND extension_name IN ('delta', 'httpfs')\").fetchall()[0][0])"
    )
    dead_proxy = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "http_proxy": dead_proxy,
        "https_proxy": dead_proxy,
        "HTTP_PROXY": dead_proxy,
        "HTTPS_PROXY": dead_proxy,
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3", "0"]


def test_hooks_see_the_connection(lake: Path) -> None:
    def add_double(con: object) -> None:
        con.create_function("double_it", lambda x: x * 2, [int], int)  # type: ignore[attr-defined]

    assert Warehouse(lake, hooks=(add_double,)).sql("SELECT double_it(21) AS v")["v"][0] == 42


def test_an_empty_or_missing_lake_has_no_tables(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "nowhere")
    assert wh.tables() == {}
    with pytest.raises(QueryError, match=r"tables in the lake .*: \(none\)"):
        wh.sql("SELECT * FROM readings")
    assert pa.types.is_integer(wh.arrow("SELECT 1 AS one").schema.field("one").type)


def test_both_readers_give_the_same_rows_for_partitions_and_added_columns(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    frame = pl.DataFrame(
        {
            "day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), None],
            "site": ["a b", "c/d%", "it's"],  # values that need escaping in paths and SQL
            "v": [1, 2, 3],
        }
    )
    write_deltalake(str(lake / "parts"), frame.to_arrow(), partition_by=["day", "site"])
    write(lake, "evolving", pl.DataFrame({"v": [1]}))
    write_deltalake(
        str(lake / "evolving"),
        pl.DataFrame({"v": [2], "w": ["x"]}).to_arrow(),
        mode="append",
        schema_mode="merge",
    )
    native, dataset = Warehouse(lake), Warehouse(lake, parquet_reader=False)
    # Both read natively: the old file without `w` gives nulls there (union by name).
    assert native.scans() == {"evolving": "parquet", "parts": "parquet"}
    for sql in (
        "SELECT * FROM parts ORDER BY v",
        "SELECT v FROM parts WHERE day = DATE '2026-01-02' AND site = 'c/d%'",
        "SELECT * FROM evolving ORDER BY v",
    ):
        assert native.sql(sql).equals(dataset.sql(sql)), sql
    assert native.sql("SELECT * FROM parts ORDER BY v").to_dicts() == frame.to_dicts()
    assert native.sql("SELECT * FROM evolving ORDER BY v")["w"].to_list() == [None, "x"]


def test_utc_bucket_matches_time_bucket_and_refuses_months(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    same = wh.sql(
        """
        SELECT bool_and(utc_bucket(w, t) = time_bucket(w, t)) AS same, count(*) AS n
        FROM range(TIMESTAMPTZ '1969-12-30 00:00:00+00', TIMESTAMPTZ '1970-01-03 00:00:00+00',
                   INTERVAL 37 SECOND) AS r(t),
             (VALUES (INTERVAL 1 SECOND), (INTERVAL 1 MINUTE), (INTERVAL 15 MINUTE),
                     (INTERVAL 1 HOUR), (INTERVAL 1 DAY)) AS v(w)
        """
    )
    assert same.to_dicts() == [{"same": True, "n": 5 * 9341}]
    with pytest.raises(QueryError, match="utc_bucket takes a fixed width"):
        wh.sql("SELECT utc_bucket(INTERVAL 1 MONTH, TIMESTAMPTZ '2026-01-01 00:00:00+00')")


@pytest.mark.parametrize("parquet_reader", [True, False])
def test_a_missing_data_file_says_which_and_what_to_do(lake: Path, parquet_reader: bool) -> None:
    write(lake, "readings", pl.DataFrame({"sensor": ["c"], "value": [9.0]}))
    data = sorted((lake / "readings").glob("*.parquet"))[0]
    kept = data.read_bytes()
    data.unlink()  # as a vacuum with too short a retention would
    wh = Warehouse(lake, parquet_reader=parquet_reader)
    with pytest.raises(TableError) as caught:
        wh.sql("SELECT count(*) FROM readings")
    message = str(caught.value)
    assert f"lists data file {data}, which does not exist" in message
    assert "repair()" in message and "Restore them from a backup" in message
    assert wh.sql("SELECT count(*) AS n FROM machines")["n"][0] == 2
    data.write_bytes(kept)  # restored: every row is back, nothing was changed
    assert wh.sql("SELECT count(*) AS n FROM readings")["n"][0] == 4
