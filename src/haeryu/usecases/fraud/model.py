"""The fraud model: training rows from labelled history, and reasons an analyst can read.

Training (``haeryu model train`` underneath: :class:`ModelRegistry.train`) fits a
gradient-boosted classifier on :data:`~haeryu.usecases.fraud.features.FEATURES`.  The
rows are the last ``train_days`` of history, featurized exactly as the stream does:
profiles from the days before, recent state warmed with the day before.  Analyst
feedback (confirmed fraud / false alarm) overrides the simulator's label of a
transaction.

Reasons: for each flagged transaction, each feature is set back to the value a typical
legitimate transaction has (its median in training) and the drop of the score is the
feature's contribution; the largest contributions are the reasons.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from haeryu.usecases.fraud.features import FEATURES, with_features, with_profile, with_recent
from haeryu.usecases.fraud.profiles import profiles_from_frame

MODEL_NAME = "fraud"
DAY_MS = 86_400_000
PARAMS: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.1, "max_leaf_nodes": 31}

#: How each feature reads in a reason, with its value.
LABELS: dict[str, str] = {
    "amount": "amount {v:,.0f}",
    "log_amount": "amount {e:,.0f}",
    "amount_z": "amount {v:+.1f} sd from the card's usual",
    "amount_over_p95": "amount {v:.1f}x the card's 95th percentile",
    "amount_over_max": "amount {v:.1f}x the card's largest",
    "new_merchant": "merchant never used by this card",
    "new_category": "merchant category never used by this card",
    "new_country": "country never used by this card",
    "new_device": "device never used by this card",
    "device_new_24h": "device first seen today",
    "hour_share": "{p:.1%} of the card's payments happen at this hour",
    "local_hour": "local hour {v:.0f}",
    "is_night": "at night (01:00-05:00)",
    "dist_home_km": "{v:,.0f} km from home",
    "dist_prev_km": "{v:,.0f} km from the previous payment",
    "secs_since_prev": "{v:,.0f} s after the previous payment",
    "speed_kmh": "travel at {v:,.0f} km/h since the previous payment",
    "tx_1m": "{v:.0f} payments in 1 minute",
    "tx_1h": "{v:.0f} payments in 1 hour",
    "tx_24h": "{v:.0f} payments in 24 hours",
    "sum_1h": "{v:,.0f} spent in 1 hour",
    "sum_24h": "{v:,.0f} spent in 24 hours",
    "small_1h": "{v:.0f} small payments in 1 hour",
    "velocity_24h": "{v:.1f}x the card's usual daily count",
    "tx_1h_over_max": "{v:.1f}x the card's busiest hour",
    "category_risk": "high-risk merchant category (risk {v:.2f})",
    "high_risk_share": "card rarely uses high-risk categories ({p:.1%})",
    "channel_code": "channel",
    "has_profile": "no profile for this card",
}


def featurize(history: pl.DataFrame, *, cut_ms: int, end_ms: int | None = None) -> pl.DataFrame:
    """Rows of ``history`` from ``cut_ms`` (to ``end_ms``) with features, profiles from before."""
    profiles = profiles_from_frame(history, until_ms=cut_ms)
    later = history.filter(pl.col("ts") >= cut_ms)
    if end_ms is not None:
        later = later.filter(pl.col("ts") < end_ms)
    past = history.filter((pl.col("ts") < cut_ms) & (pl.col("ts") >= cut_ms - DAY_MS))
    return with_features(with_profile(with_recent(later, past), profiles))


def apply_feedback(rows: pl.DataFrame, feedback: pl.DataFrame | None) -> pl.DataFrame:
    """Labels from analyst feedback (``tx_id``, ``label`` fraud|legit) win over ``is_fraud``."""
    if feedback is None or feedback.height == 0:
        return rows
    latest = feedback.unique("tx_id", keep="last").select(
        "tx_id", __fb=(pl.col("label") == "fraud").cast(pl.Int8)
    )
    return (
        rows.join(latest, on="tx_id", how="left")
        .with_columns(is_fraud=pl.coalesce("__fb", "is_fraud"))
        .drop("__fb")
    )


def train(
    registry: Any,
    rows: pl.DataFrame,
    *,
    name: str = MODEL_NAME,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    compile: bool = True,
) -> Any:
    """Train a new version of ``name`` on featurized ``rows`` (``is_fraud`` the target).

    The typical legitimate value of each feature (for reasons) is stored beside the
    version.  ``compile`` also builds the trees as native code when gcc is there
    (docs/models.md): about twice the scoring speed in the speed layer.
    """
    data = rows.select(*FEATURES, pl.col("is_fraud").cast(pl.Int64))
    # A file without places or devices leaves some features empty; gradient boosting
    # cannot bin a column with no value, so it sees a constant (scoring then sends the
    # missing values down the branch most rows took).
    empty = [f for f in FEATURES if data[f].null_count() == data.height]
    data = data.with_columns(pl.lit(0.0).alias(f) for f in empty)
    typical = data.filter(pl.col("is_fraud") == 0).select(pl.col(FEATURES).median()).row(0)
    options = dict(PARAMS if params is None else params)
    info = registry.train(
        name,
        data,
        "is_fraud",
        "classifier",
        features=FEATURES,
        params=options,
        seed=seed,
        compile=compile and shutil.which("gcc") is not None,
    )
    # The baselines live beside model.json (the registry stores params as given).
    path = registry.root / name / f"v{info.version}" / "baseline.json"
    path.write_text(json.dumps(dict(zip(FEATURES, typical, strict=True))))
    return info


def baseline(registry: Any, name: str, version: int) -> dict[str, float]:
    """The typical legitimate value of each feature stored with a model version."""
    path = registry.root / name / f"v{version}" / "baseline.json"
    return {k: float(v) for k, v in json.loads(path.read_text()).items() if v is not None}


def contributions(model: Any, x: np.ndarray, base: Mapping[str, float]) -> np.ndarray:
    """Score drop when each feature of each row goes back to its typical value.

    All the changed rows are scored in one model call (one per feature would pay the
    model's fixed cost per call many times over).
    """
    n, width = x.shape
    columns = [j for j, f in enumerate(FEATURES) if f in base]
    stacked = np.repeat(x[None, :, :], len(columns) + 1, axis=0)
    for k, j in enumerate(columns, start=1):
        stacked[k, :, j] = base[FEATURES[j]]
    scores = model.score(stacked.reshape(-1, width)).reshape(len(columns) + 1, n)
    out = np.zeros_like(x, dtype=np.float64)
    for k, j in enumerate(columns, start=1):
        out[:, j] = scores[0] - scores[k]
    return out


def describe(feature: str, value: float) -> str:
    """A readable phrase for a feature's value."""
    template = LABELS.get(feature, feature + " {v}")
    v = float("nan") if value is None else float(value)
    try:
        return template.format(v=v, p=v, e=float(np.exp(min(v, 50.0))))
    except (ValueError, OverflowError):
        return f"{feature} {v}"


def reasons(model: Any, x: np.ndarray, base: Mapping[str, float], top: int = 3) -> list[list[str]]:
    """The ``top`` features that raised each row's score most, as phrases."""
    if len(x) == 0:
        return []
    contrib = contributions(model, x, base)
    out: list[list[str]] = []
    for i in range(len(x)):
        order = np.argsort(-contrib[i])[:top]
        # Features that each raise the score; when the score comes from features only
        # together, the one that matters most on its own is still named.
        chosen = [j for j in order if contrib[i, j] > 0.01] or [int(order[0])]
        out.append([f"{describe(FEATURES[j], x[i, j])} (+{contrib[i, j]:.2f})" for j in chosen])
    return out
