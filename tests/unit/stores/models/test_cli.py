"""``haeryu model train|list|show`` on files, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from haeryu.cli import app
from support.model_data import SKAB, sensors

WIDE = {"COLUMNS": "200"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=WIDE)
    return result.exit_code, result.output


def test_train_list_and_show_from_a_parquet_file(tmp_path: Path) -> None:
    data = tmp_path / "readings.parquet"
    sensors().drop("level").write_parquet(data)
    models = str(tmp_path / "models")
    code, output = invoke(
        "model", "train", "hot", "--data", str(data), "--target", "hot", "--models", models,
        "--sql", "SELECT a, b, hot FROM readings WHERE c < 4",
    )  # fmt: skip
    assert code == 0, output
    assert "trained hot v1 (HistGradientBoostingClassifier)" in output
    assert "roc_auc" in output and "accuracy" in output

    code, output = invoke("model", "list", "--models", models)
    assert code == 0 and "hot" in output and "v1" in output and "classifier" in output

    code, output = invoke("model", "show", "hot", "--models", models)
    assert code == 0, output
    assert "SELECT a, b, hot FROM readings WHERE c < 4" in output
    assert "use: SELECT predict('hot', a, b) FROM ..." in output


def test_unknown_model_and_missing_columns_are_explained(tmp_path: Path) -> None:
    data = tmp_path / "readings.parquet"
    sensors().drop("level").write_parquet(data)
    models = str(tmp_path / "models")
    code, output = invoke("model", "show", "hot", "--models", models)
    assert code == 1 and "model 'hot' is not registered; known models: none yet" in output
    code, output = invoke(
        "model", "train", "hot", "--data", str(data), "--target", "hto", "--models", models
    )
    assert code == 1 and "target column 'hto' is not in the data" in output
    code, output = invoke("model", "train", "hot", "--data", str(data), "--target", "hot",
                          "--sql", "SELECT a, z FROM readings", "--models", models)  # fmt: skip
    assert code == 1 and "training query failed" in output and '"z" not found' in output
    code, output = invoke("model", "list", "--models", models)
    assert code == 0 and "no models in" in output  # nothing half-written by the failures
    code, output = invoke(
        "model", "train", "x", "--data", str(tmp_path / "nope.csv"), "--models", models
    )
    assert code == 1 and "no such file" in output


def test_an_anomaly_detector_from_skab_csv(tmp_path: Path) -> None:
    if not SKAB.is_dir():
        return
    code, output = invoke(
        "model", "train", "pump", "--kind", "anomaly", "--target", "anomaly",
        "--data", str(SKAB / "valve2" / "1.csv"), "--models", str(tmp_path),
        "--sql", 'SELECT * EXCLUDE (datetime, changepoint) FROM "1"',
    )  # fmt: skip
    assert code == 0, output
    assert "IsolationForest" in output and "false_alarm_rate" in output


def test_train_on_a_lake_table(tmp_path: Path) -> None:
    pytest.importorskip("haeryu.stores.warehouse", reason="the warehouse is not in this build")
    deltalake = pytest.importorskip("deltalake")
    deltalake.write_deltalake(tmp_path / "lake" / "readings", sensors().drop("level").to_arrow())
    code, output = invoke(
        "model", "train", "hot", "--lake", str(tmp_path / "lake"), "--target", "hot",
        "--sql", "SELECT a, b, c, hot FROM readings", "--models", str(tmp_path / "models"),
    )  # fmt: skip
    assert code == 0, output
    assert "trained hot v1" in output


def test_lake_without_the_warehouse_says_what_to_do(tmp_path: Path) -> None:
    try:
        import haeryu.stores.warehouse  # noqa: F401
    except ImportError:
        code, output = invoke("model", "train", "x", "--lake", str(tmp_path), "--target", "y")
        assert code == 1 and "--lake needs the warehouse" in output and "--data" in output
    else:
        code, output = invoke(
            "model", "train", "x", "--lake", str(tmp_path / "nope"), "--target", "y"
        )
        assert code == 1 and "no such directory" in output
