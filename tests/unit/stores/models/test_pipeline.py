"""The registered model scores a stream's micro-batches (run_local, no broker)."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from haeryu.stores.models import FeatureError, ModelRegistry, register_sql_functions, score_with
from haeryu.stream import Pipeline
from haeryu.stream.errors import PlanError
from haeryu.testing import run_local
from support.model_data import FAST, SKAB, SKAB_FEATURES, sensors


def test_a_model_trained_on_history_scores_the_stream(registry: ModelRegistry) -> None:
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    live = sensors(n=300, seed=7).with_row_index("i").drop("hot", "level")
    p = Pipeline("scoring")
    p.source("readings").map_batches(
        score_with("hot", into="p_hot", registry=registry, label="verdict")
    ).to_topic("scored")
    out = run_local(p, {"readings": live.to_dicts()}, batch_size=64).topic("scored").sort("i")
    assert out.height == 300  # every record scored, none dropped
    expected = registry.load("hot").score(live.select("a", "b", "c").to_numpy())
    np.testing.assert_allclose(out["p_hot"].to_numpy(), expected)
    assert out["verdict"].to_list() == ["1" if s > 0.5 else "0" for s in expected]


def test_score_with_names_a_missing_feature(registry: ModelRegistry) -> None:
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    score = score_with("hot", registry=registry)
    with pytest.raises(FeatureError, match="needs feature column\\(s\\) 'c'"):
        score(pl.DataFrame({"a": [0.1], "b": [0.2]}))
    p = Pipeline("scoring")
    p.source("readings").map_batches(score).to_topic("scored")
    with pytest.raises(PlanError, match="'c'"):
        run_local(p, {"readings": [{"a": 0.1, "b": 0.2}]})


def test_score_with_keeps_the_version_of_its_first_batch(registry: ModelRegistry) -> None:
    data = sensors().drop("level")
    registry.train("hot", data, "hot", params=FAST)
    score = score_with("hot", registry=registry)
    batch = sensors(n=50, seed=3).select("a", "b", "c")
    before = score(batch)["score"]
    registry.train("hot", data.with_columns(hot=1 - pl.col("hot")), "hot", params=FAST)
    assert score(batch)["score"].equals(before)
    assert not score_with("hot", registry=registry)(batch)["score"].equals(before)


def test_skab_pump_detector_scores_the_stream_as_it_scores_in_sql(
    registry: ModelRegistry,
) -> None:
    """Trained on history (valve1), the detector scores a later experiment (valve2/1)
    both live and in SQL, with the same numbers."""
    if not SKAB.is_dir():
        pytest.skip(f"SKAB data not found at {SKAB}")
    cols = ", ".join(f'"{c}"' for c in SKAB_FEATURES)
    history = f"SELECT {cols}, anomaly FROM read_csv('{SKAB}/valve1/*.csv', delim=';')"
    registry.train("pump", history, "anomaly", "anomaly")
    con = duckdb.connect()
    register_sql_functions(con, registry)
    live_file = f"read_csv('{SKAB}/valve2/1.csv', delim=';')"
    live = con.sql(f"SELECT {cols}, anomaly FROM {live_file}").pl().with_row_index("i")
    in_sql = con.sql(f"SELECT predict('pump', {cols}) AS s FROM {live_file}").pl()["s"]

    p = Pipeline("pump-monitor")
    p.source("pump").map_batches(
        score_with("pump", into="score", registry=registry, label="state")
    ).to_topic("scored")
    out = run_local(p, {"pump": live.to_dicts()}, batch_size=200).topic("scored").sort("i")
    assert out.height == live.height  # every reading scored once
    np.testing.assert_allclose(out["score"].to_numpy(), in_sql.to_numpy())
    flagged = out["state"] == "anomaly"
    assert (flagged == (out["score"] > 0)).all()
    truth = live["anomaly"] == 1
    # flagged readings are anomalous more often than unflagged ones: it detects something
    assert truth.filter(flagged).mean() > truth.filter(~flagged).mean()
