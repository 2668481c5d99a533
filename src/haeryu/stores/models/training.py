"""Fit a scikit-learn model on a Polars frame and measure it on held-out rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from haeryu.stores.models.errors import FeatureError, ModelError

Kind = Literal["classifier", "regressor", "anomaly"]
KINDS: tuple[Kind, ...] = ("classifier", "regressor", "anomaly")


@dataclass
class Fitted:
    """A fitted estimator and what was learnt about it while fitting."""

    estimator: Any
    features: list[str]
    dtypes: list[str]
    classes: list[Any] | None
    metrics: dict[str, Any]
    rows: dict[str, int]
    train_seconds: float


def feature_columns(
    frame: pl.DataFrame, target: str | None, features: list[str] | None
) -> list[str]:
    """The feature columns: ``features`` if given, else every column but the target.

    Only numeric and boolean columns can be features; any other is refused by name.
    """
    if target is not None and target not in frame.columns:
        raise FeatureError(
            f"target column {target!r} is not in the data; columns: {', '.join(frame.columns)}"
        )
    names = list(features) if features else [c for c in frame.columns if c != target]
    if not names:
        raise FeatureError("no feature columns: the data has only the target column")
    for name in names:
        if name not in frame.columns:
            raise FeatureError(
                f"feature column {name!r} is not in the data; columns: {', '.join(frame.columns)}"
            )
        dtype = frame.schema[name]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise FeatureError(
                f"feature column {name!r} is {dtype}, not a number: cast it in the SQL "
                f"(e.g. CAST({name} AS DOUBLE)) or leave it out of the SELECT"
            )
    return names


def to_matrix(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    """The features as a float64 matrix, nulls as NaN."""
    return (
        frame.select(pl.col(features).cast(pl.Float64))
        .to_numpy(allow_copy=True)
        .astype(np.float64, copy=False)
    )


def fit(
    frame: pl.DataFrame,
    target: str | None,
    kind: Kind,
    *,
    features: list[str] | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> Fitted:
    """Fit ``kind`` on ``frame`` and score it on a held-out ``test_fraction`` of the rows.

    Rows whose target is null are left out of fitting and counted in ``rows["null_target"]``.
    For ``anomaly`` the target is optional: a 0/1 label used only to measure the detector
    (it fits on the training rows labelled normal, as SKAB's protocol does).
    """
    from sklearn.model_selection import train_test_split

    if kind not in KINDS:
        raise ModelError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if target is None and kind != "anomaly":
        raise ModelError(f"a {kind} needs a target column (--target)")
    names = feature_columns(frame, target, features)
    null_target = 0
    if target is not None:
        null_target = frame[target].null_count()
        frame = frame.filter(pl.col(target).is_not_null())
    if frame.height < 10:
        raise ModelError(f"only {frame.height} usable rows: at least 10 are needed to train")
    x = to_matrix(frame, names)
    y = frame[target].to_numpy() if target is not None else np.zeros(frame.height)
    stratify = y if kind == "classifier" and _can_stratify(y, test_fraction) else None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=stratify
    )
    started = time.perf_counter()
    estimator, classes = _fit(
        kind, x_train, y_train, labelled=target is not None, seed=seed, params=params
    )
    seconds = time.perf_counter() - started
    if kind == "classifier":
        metrics = _classifier_metrics(estimator, x_test, y_test)
    elif kind == "regressor":
        metrics = _regressor_metrics(estimator, x_test, y_test)
    else:
        metrics = _anomaly_metrics(estimator, x_test, y_test if target is not None else None)
    rows = {"train": len(x_train), "test": len(x_test), "null_target": null_target}
    dtypes = [str(frame.schema[n]) for n in names]
    return Fitted(estimator, names, dtypes, classes, metrics, rows, seconds)


def _can_stratify(y: np.ndarray, test_fraction: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    return len(counts) > 1 and counts.min() >= 2 and len(y) * test_fraction >= len(counts)


def _fit(
    kind: Kind,
    x: np.ndarray,
    y: np.ndarray,
    *,
    labelled: bool,
    seed: int,
    params: dict[str, Any] | None,
) -> tuple[Any, list[Any] | None]:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
    )

    options = dict(params or {})
    if kind == "classifier":
        if len(np.unique(y)) < 2:
            raise ModelError(
                "the target has a single value: a classifier needs two classes or more"
            )
        model: Any = HistGradientBoostingClassifier(random_state=seed, **options).fit(x, y)
        return model, [_plain(c) for c in model.classes_]
    if kind == "regressor":
        if not np.issubdtype(y.dtype, np.number):
            raise ModelError(f"a regressor needs a numeric target, got {y.dtype}")
        return HistGradientBoostingRegressor(random_state=seed, **options).fit(x, y), None
    normal = x[y == 0] if labelled else x
    if len(normal) < 10:
        raise ModelError("fewer than 10 training rows labelled normal (0): cannot fit the detector")
    if np.isnan(normal).any():
        raise ModelError("an anomaly detector cannot learn from null features: filter them out")
    return IsolationForest(random_state=seed, **options).fit(normal), None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _classifier_metrics(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    predicted = model.predict(x)
    binary = len(model.classes_) == 2
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(
            f1_score(y, predicted, pos_label=model.classes_[1])
            if binary
            else f1_score(y, predicted, average="macro")
        ),
    }
    proba = model.predict_proba(x)
    try:
        out["roc_auc"] = float(
            roc_auc_score(y, proba[:, 1])
            if binary
            else roc_auc_score(y, proba, multi_class="ovr", labels=model.classes_)
        )
    except ValueError:
        out["roc_auc"] = None  # the held-out rows hold one class only
    return out


def _regressor_metrics(model: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, r2_score

    predicted = model.predict(x)
    return {"mae": float(mean_absolute_error(y, predicted)), "r2": float(r2_score(y, predicted))}


def anomaly_score(model: Any, x: np.ndarray) -> np.ndarray:
    """Higher is more anomalous; above 0 is flagged (IsolationForest's own threshold)."""
    return np.asarray(-model.decision_function(x), dtype=np.float64)


def _anomaly_metrics(model: Any, x: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    scores = anomaly_score(model, x)
    flagged = scores > 0
    q = np.quantile(scores, [0.01, 0.5, 0.9, 0.99])
    out: dict[str, Any] = {
        "score_p01": float(q[0]),
        "score_p50": float(q[1]),
        "score_p90": float(q[2]),
        "score_p99": float(q[3]),
        "flagged_share": float(flagged.mean()),
    }
    if y is not None:
        from sklearn.metrics import f1_score, roc_auc_score

        truth = y.astype(bool)
        out["f1"] = float(f1_score(truth, flagged, zero_division=0))
        normal, anomalous = (~truth).sum(), truth.sum()
        out["false_alarm_rate"] = float((flagged & ~truth).sum() / normal) if normal else None
        out["missed_alarm_rate"] = (
            float((~flagged & truth).sum() / anomalous) if anomalous else None
        )
        out["roc_auc"] = float(roc_auc_score(truth, scores)) if normal and anomalous else None
    return out
