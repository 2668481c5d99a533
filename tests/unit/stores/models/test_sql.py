"""predict() in DuckDB SQL: one model call per Arrow chunk, features checked by position."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from haeryu.stores.models import Model, ModelError, ModelRegistry, register_sql_functions
from support.model_data import FAST, sensors


@pytest.fixture
def con(registry: ModelRegistry) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register("readings", sensors(n=5000, seed=1))
    register_sql_functions(connection, registry)
    return connection


def test_predict_scores_every_row_like_the_model_in_few_calls(
    registry: ModelRegistry, con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    calls: list[int] = []
    score = Model.score

    def counting(self: Model, x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return score(self, x)

    monkeypatch.setattr(Model, "score", counting)
    got = con.sql("SELECT a, b, c, predict('hot', a, b, c) AS p FROM readings").pl()
    data = sensors(n=5000, seed=1)
    expected = registry.load("hot").estimator.predict_proba(data.select("a", "b", "c").to_numpy())
    assert got.height == 5000
    np.testing.assert_allclose(
        got.sort("a")["p"].to_numpy(),
        pl.DataFrame({"a": data["a"], "p": expected[:, 1]}).sort("a")["p"].to_numpy(),
    )
    assert sum(calls) == 5000 and len(calls) <= 5, calls  # chunks of ~2048 rows, not rows


def test_predict_label_and_pinned_versions(
    registry: ModelRegistry, con: duckdb.DuckDBPyConnection
) -> None:
    data = sensors().drop("level")
    registry.train("hot", data, "hot", params=FAST)
    registry.train("hot", data.with_columns(hot=1 - pl.col("hot")), "hot", params=FAST)  # inverted
    row = con.sql(
        "SELECT avg((predict_label('hot@1', a, b, c) = hot::VARCHAR)::INT),"
        " avg((predict_label('hot', a, b, c) = hot::VARCHAR)::INT),"
        " avg((predict('hot@2', a, b, c) = predict('hot', a, b, c))::INT) FROM readings"
    ).fetchall()[0]
    v1, latest, same = row
    assert v1 > 0.9 and latest < 0.1 and same == 1


def test_a_regressor_and_an_anomaly_detector_in_sql(
    registry: ModelRegistry, con: duckdb.DuckDBPyConnection
) -> None:
    registry.train("level", sensors().drop("hot"), "level", "regressor", params=FAST)
    err = con.sql("SELECT avg(abs(predict('level', a, b, c) - level)) FROM readings").fetchall()[0]
    assert err[0] < 0.5
    registry.train("odd", sensors().select("a", "b"), None, "anomaly")
    rows = con.sql(
        "SELECT predict('odd', 5.0, 5.0), predict('odd', 0.5, 0.5), predict('odd', NULL, 0.5),"
        " predict_label('odd', 5.0, 5.0)"
    ).fetchall()[0]
    far, usual, missing, label = rows
    assert far > 0 > usual and missing is None and label == "anomaly"


def test_wrong_calls_are_named(registry: ModelRegistry, con: duckdb.DuckDBPyConnection) -> None:
    registry.train("hot", sensors().drop("level"), "hot", params=FAST)
    cases = {
        "predict('htp', a, b, c)": "model 'htp' is not registered; known models: hot",
        "predict('hot', a, b)": "takes 3 features, in this order: a, b, c; got 2",
        "predict('hot', a, b, 'x')": "feature 3 \\('c'\\) must be a number, got string",
        "predict('hot@x', a, b, c)": "a version is written NAME@3",
        "predict_label('level', a, b, c)": "not registered",
    }
    for call, message in cases.items():
        with pytest.raises(duckdb.Error, match=message):
            con.sql(f"SELECT {call} FROM readings").fetchall()


def test_a_compiled_model_scores_like_scikit_learn(
    registry: ModelRegistry, con: duckdb.DuckDBPyConnection
) -> None:
    data = sensors().drop("level")
    registry.train("hot", data, "hot", params=FAST, compile=True)
    model = registry.load("hot")
    if model.native is None:
        pytest.skip("no gcc: the model scores with scikit-learn")
    x = sensors(n=3000, seed=5).select("a", "b", "c").to_numpy()
    x[::7, 1] = np.nan  # missing values take the branch scikit-learn takes
    np.testing.assert_allclose(model.score(x), model.estimator.predict_proba(x)[:, 1], atol=1e-12)
    got = con.sql("SELECT a, predict('hot', a, b, c) AS p FROM readings ORDER BY a").pl()
    again = registry.load("hot", 1)
    assert again.native is not None
    sorted_x = sensors(n=5000, seed=1).sort("a").select("a", "b", "c").to_numpy()
    np.testing.assert_allclose(
        got["p"].to_numpy(), again.estimator.predict_proba(sorted_x)[:, 1], atol=1e-12
    )
    library = registry.root / "hot" / "v1" / "model.so"
    changed = library.read_bytes() + b"\0"
    library.unlink()  # a new file: rewriting a loaded library in place would crash this process
    library.write_bytes(changed)
    with pytest.raises(ModelError, match="does not match the checksum"):
        ModelRegistry(registry.root).load("hot")


def test_a_multiclass_model_gives_labels_not_scores(
    registry: ModelRegistry, con: duckdb.DuckDBPyConnection
) -> None:
    data = sensors().drop("level").with_columns(hot=pl.col("c").cast(pl.String)).drop("c")
    registry.train("band", data, "hot", params=FAST)
    assert registry.info("band").classes == ["0", "1", "2", "3", "4"]
    labels = con.sql("SELECT DISTINCT predict_label('band', a, b) AS l FROM readings").pl()
    assert set(labels["l"]) <= {"0", "1", "2", "3", "4"}
    with pytest.raises(duckdb.Error, match=r"has 5 classes.*use predict_label"):
        con.sql("SELECT predict('band', a, b) FROM readings").fetchall()
