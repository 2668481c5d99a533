"""``haeryu query``: what it prints for results, long results, each format and errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from haeryu.cli import app

ENV = {"COLUMNS": "200", "HAERYU_LAKE": ""}


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    frame = pl.DataFrame({"sensor": [f"s{i % 3}" for i in range(120)], "value": range(120)})
    write_deltalake(str(root / "readings"), frame.to_arrow())
    return root


def query(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["query", *args], env=ENV)
    return result.exit_code, result.stdout, result.stderr


def test_default_is_a_rich_table_with_types_and_a_row_count(lake: Path) -> None:
    code, out, _ = query(
        "SELECT sensor, count(*) AS n FROM readings GROUP BY sensor ORDER BY sensor",
        "--lake",
        str(lake),
    )
    assert code == 0
    lines = [line for line in out.splitlines() if "s0" in line or "s1" in line]
    assert len(lines) == 2 and "40" in lines[0]
    assert "String" in out and "Int64" in out
    assert "3 rows" in out


def test_long_results_are_cut_with_a_note_saying_how_to_get_all(lake: Path) -> None:
    code, out, _ = query("SELECT value FROM readings ORDER BY value", "--lake", str(lake))
    assert code == 0
    assert "│    49 │" in out and "│    50 │" not in out
    assert "showing the first 50 of 120 rows" in out
    assert "--max-rows 0" in out and "--output FILE" in out
    code, out, _ = query(
        "SELECT value FROM readings ORDER BY value", "--lake", str(lake), "--max-rows", "0"
    )
    assert "│   119 │" in out and "120 rows" in out


def test_csv_json_and_parquet_hold_every_row(lake: Path, tmp_path: Path) -> None:
    sql = "SELECT sensor, value FROM readings ORDER BY value"
    expected = pl.read_delta(str(lake / "readings")).sort("value")
    code, out, _ = query(sql, "--lake", str(lake), "--format", "csv")
    assert code == 0
    assert pl.read_csv(io.StringIO(out)).equals(expected)
    code, out, _ = query(sql, "--lake", str(lake), "-f", "json")
    assert json.loads(out) == expected.to_dicts()
    target = tmp_path / "out.parquet"
    code, out, _ = query(sql, "--lake", str(lake), "-f", "parquet", "-o", str(target))
    assert code == 0 and out == ""
    assert pl.read_parquet(target).equals(expected)


def test_unknown_table_lists_tables_with_a_caret(lake: Path) -> None:
    code, out, err = query("SELECT * FROM reading", "--lake", str(lake))
    assert code == 1 and out == ""
    assert "unknown table 'reading' (did you mean 'readings'?)" in err
    assert "LINE 1: SELECT * FROM reading\n                      ^^^^^^^" in err
    assert f"tables in the lake {lake}: readings" in err


def test_unknown_column_suggests_the_nearest_with_a_caret(lake: Path) -> None:
    code, _, err = query("SELECT sensor, vlaue FROM readings", "--lake", str(lake))
    assert code == 1
    assert "unknown column 'vlaue' (did you mean 'value'?)" in err
    assert "LINE 1: SELECT sensor, vlaue FROM readings\n" + " " * 23 + "^^^^^" in err


def test_syntax_error_shows_duckdbs_position(lake: Path) -> None:
    code, _, err = query("SELECT sensor FROM readings WHERE", "--lake", str(lake))
    assert code == 1
    assert "Parser Error" in err and "LINE 1:" in err and "^" in err


def test_an_unknown_format_is_refused(lake: Path) -> None:
    code, _, err = query("SELECT 1", "--lake", str(lake), "--format", "xml")
    assert code == 2
    assert "unknown format 'xml'" in err and "csv" in err


def test_parquet_goes_to_a_piped_stdout_and_a_table_to_a_file(lake: Path, tmp_path: Path) -> None:
    sql = "SELECT value FROM readings ORDER BY value"
    result = CliRunner().invoke(app, ["query", sql, "--lake", str(lake), "-f", "parquet"], env=ENV)
    assert result.exit_code == 0
    assert pl.read_parquet(io.BytesIO(result.stdout_bytes))["value"].to_list() == list(range(120))
    target = tmp_path / "out.txt"
    code, out, _ = query(sql, "--lake", str(lake), "-o", str(target))
    assert code == 0 and out == ""
    text = target.read_text()
    assert "│   119 │" in text and "120 rows" in text  # a file gets every row


def test_a_missing_lake_says_so_and_still_runs_plain_sql(tmp_path: Path) -> None:
    code, out, err = query("SELECT 42 AS answer", "--lake", str(tmp_path / "nowhere"))
    assert code == 0 and "42" in out
    assert "does not exist" in err and "--lake DIR" in err


def test_predict_is_callable_in_haeryu_query(lake: Path, tmp_path: Path) -> None:
    from haeryu.stores.models.registry import ModelRegistry

    models = tmp_path / "models"
    train = pl.DataFrame({"value": list(range(200)), "high": [int(v >= 100) for v in range(200)]})
    ModelRegistry(models).train("high", train, target="high", kind="classifier")
    result = CliRunner().invoke(
        app,
        [
            "query",
            "SELECT value, predict_label('high', value::DOUBLE) AS label FROM readings "
            "WHERE value IN (3, 117) ORDER BY value",
            "--lake",
            str(lake),
            "--format",
            "json",
        ],
        env={**ENV, "HAERYU_MODELS": str(models)},
    )
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(rows) == 1 and isinstance(rows[0], list):
        rows = rows[0]
    assert [(r["value"], str(r["label"])) for r in rows] == [(3, "0"), (117, "1")]
