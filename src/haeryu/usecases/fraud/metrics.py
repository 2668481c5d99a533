"""Detection metrics: the figures replay and evaluation report.

- precision, recall, false-positive rate of the flagged transactions (STEP_UP or BLOCK);
- ROC AUC and average precision of the score (threshold-free);
- card precision@k per day: each day, the ``k`` cards with the highest score that day
  (a card's score is its highest), and the share of them that had fraud that day --
  what a team that investigates ``k`` cards a day finds.  Averaged over the days.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

DAY_MS = 86_400_000


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def confusion(flagged: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    """Counts and precision, recall and false-positive rate of boolean ``flagged``."""
    flagged = np.asarray(flagged, dtype=bool)
    label = np.asarray(label, dtype=bool)
    tp = int((flagged & label).sum())
    fp = int((flagged & ~label).sum())
    fn = int((~flagged & label).sum())
    tn = int((~flagged & ~label).sum())
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "false_positive_rate": _ratio(fp, fp + tn),
    }


def ranking(score: np.ndarray, label: np.ndarray) -> dict[str, float | None]:
    """ROC AUC and average precision (``None`` when only one class is present)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    label = np.asarray(label, dtype=int)
    if len(np.unique(label)) < 2:
        return {"roc_auc": None, "average_precision": None}
    return {
        "roc_auc": float(roc_auc_score(label, score)),
        "average_precision": float(average_precision_score(label, score)),
    }


def card_precision_at_k(frame: pl.DataFrame, k: int = 100) -> float | None:
    """Mean over days of the share of fraud among the ``k`` highest-scored cards.

    ``frame`` has ``customer_id``, ``ts`` (epoch ms), ``score`` and ``label`` (0/1).
    The denominator is ``k`` even on a day with fewer cards, as fraud teams count it.
    """
    if frame.height == 0:
        return None
    per_card = frame.group_by((pl.col("ts") // DAY_MS).alias("day"), "customer_id").agg(
        pl.col("score").max(), pl.col("label").max()
    )
    top = (
        per_card.sort(["day", "score", "customer_id"], descending=[False, True, False])
        .group_by("day", maintain_order=True)
        .head(k)
    )
    daily = top.group_by("day").agg((pl.col("label").sum() / k).alias("cp"))
    return float(daily["cp"].mean())  # type: ignore[arg-type]


def percentiles(values: np.ndarray, qs: tuple[float, ...] = (50, 99)) -> dict[str, float | None]:
    """``p50``, ``p99``, ... of ``values`` (``None`` when empty)."""
    if len(values) == 0:
        return {f"p{q:g}": None for q in qs}
    return {f"p{q:g}": float(np.percentile(values, q)) for q in qs}


def summary(frame: pl.DataFrame, k: int = 100) -> dict[str, Any]:
    """Every metric of decisions ``frame``: ``customer_id``, ``ts``, ``score``,
    ``flagged`` (bool) and ``label`` (0/1)."""
    label = frame["label"].to_numpy()
    out = confusion(frame["flagged"].to_numpy(), label)
    out.update(ranking(frame["score"].to_numpy(), label))
    out["card_precision_at_100" if k == 100 else f"card_precision_at_{k}"] = card_precision_at_k(
        frame, k
    )
    out["transactions"] = frame.height
    out["frauds"] = int(label.sum())
    return out


def clean(value: Any) -> Any:
    """JSON-friendly: NaN becomes ``None``, NumPy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return clean(value.item())
    return value
