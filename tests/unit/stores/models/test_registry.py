"""The registry trains, versions, lists and loads models, and refuses bad input clearly."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from haeryu.stores.models import FeatureError, ModelError, ModelRegistry, UnknownModelError
from support.model_data import FAST, SKAB, SKAB_FEATURES, sensors


def test_a_classifier_is_stored_with_features_metrics_and_versions(registry: ModelRegistry) -> None:
    data = sensors()
    first = registry.train("hot", data.drop("level"), "hot", "classifier", params=FAST)
    assert (first.version, first.kind, first.estimator) == (
        1,
        "classifier",
        "HistGradientBoostingClassifier",
    )
    assert first.features == ["a", "b", "c"]
    assert first.dtypes == ["Float64", "Float64", "Int64"]
    assert first.rows == {"train": 960, "test": 240, "null_target": 0}
    assert first.metrics["accuracy"] > 0.9 and first.metrics["roc_auc"] > 0.95
    assert 0 < first.metrics["f1"] <= 1 and first.classes == [0, 1]
    assert first.train_seconds > 0 and first.query is None

    second = registry.train("hot", data.select("a", "b", "hot"), "hot", params=FAST)
    assert second.version == 2
    assert [(m.name, m.version) for m in registry.list()] == [("hot", 2)]
    assert [m.version for m in registry.versions("hot")] == [1, 2]
    assert registry.load("hot").info.features == ["a", "b"]
    old = registry.load("hot", 1)
    assert old.info.features == ["a", "b", "c"]
    x = data.select("a", "b", "c").to_numpy()
    assert ((old.score(x) > 0.5) == (data["hot"].to_numpy() == 1)).mean() > 0.9


def test_a_model_trained_from_sql_keeps_its_query_and_skips_null_targets(
    registry: ModelRegistry,
) -> None:
    con = duckdb.connect()
    con.register(
        "readings",
        sensors().with_columns(
            level=pl.when(pl.int_range(pl.len()) % 10 == 0).then(None).otherwise(pl.col("level"))
        ),
    )
    sql = "SELECT a, b, c, level FROM readings"
    info = registry.train("level", sql, "level", "regressor", con=con, params=FAST)
    assert info.query == sql
    assert info.rows["null_target"] == 120  # every tenth row: not trained on, and counted
    assert info.rows["train"] + info.rows["test"] == 1080
    assert info.metrics["r2"] > 0.9 and info.metrics["mae"] < 0.5
    assert registry.info("level").query == sql


def test_an_anomaly_detector_on_skab_pump_data_beats_chance(registry: ModelRegistry) -> None:
    if not SKAB.is_dir():
        pytest.skip(f"SKAB data not found at {SKAB}")
    cols = ", ".join(f'"{c}"' for c in SKAB_FEATURES)
    sql = f"SELECT {cols}, anomaly FROM read_csv('{SKAB}/valve1/*.csv', delim=';')"
    info = registry.train("pump", sql, "anomaly", "anomaly")
    assert info.estimator == "IsolationForest" and info.features == SKAB_FEATURES
    m = info.metrics
    assert m["score_p01"] <= m["score_p50"] <= m["score_p99"]
    assert 0 < m["flagged_share"] < 1
    assert m["roc_auc"] > 0.6, m  # better than chance on held-out, labelled rows
    assert m["false_alarm_rate"] < 0.5 and m["missed_alarm_rate"] < 1


def test_an_unknown_model_names_the_known_ones(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError, match="none yet"):
        registry.load("pump")
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    with pytest.raises(UnknownModelError, match="'pmup' is not registered; known models: hot"):
        registry.load("pmup")
    with pytest.raises(UnknownModelError, match="version 7"):
        registry.load("hot", 7)
    with pytest.raises(UnknownModelError):
        registry.load("../hot")


def test_bad_training_input_is_named(registry: ModelRegistry) -> None:
    data = sensors().drop("level")
    with pytest.raises(FeatureError, match="target column 'hto'"):
        registry.train("x", data, "hto")
    with pytest.raises(FeatureError, match="feature column 'site' is String"):
        registry.train("x", data.with_columns(site=pl.lit("north")), "hot")
    with pytest.raises(ModelError, match="needs a target"):
        registry.train("x", data, None, "regressor")
    with pytest.raises(ModelError, match="single value"):
        registry.train("x", data.with_columns(hot=pl.lit(1)), "hot")
    with pytest.raises(ModelError, match="must start with a letter"):
        registry.train("../x", data, "hot")
    with pytest.raises(ModelError, match="training query failed"):
        registry.train("x", "SELECT nope FROM nowhere", "hot")
    assert registry.names() == []  # nothing half-written


def test_a_missing_feature_column_is_named(registry: ModelRegistry) -> None:
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    model = registry.load("hot")
    with pytest.raises(FeatureError, match="needs feature column\\(s\\) 'b'"):
        model.matrix(sensors().drop("b"))
    with pytest.raises(FeatureError, match="takes 3 features, in this order: a, b, c; got 2"):
        model.score(np.zeros((4, 2)))


def test_a_changed_model_file_is_refused(registry: ModelRegistry) -> None:
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    path = registry.root / "hot" / "v1" / "model.skops"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ModelError, match="does not match the checksum"):
        ModelRegistry(registry.root).load("hot")
