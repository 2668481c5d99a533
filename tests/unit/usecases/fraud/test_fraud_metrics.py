"""Detection metrics on hand-made cases whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from haeryu.usecases.fraud.metrics import (
    DAY_MS,
    card_precision_at_k,
    confusion,
    percentiles,
    ranking,
)


def test_confusion_counts_and_rates() -> None:
    flagged = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], bool)
    label = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    got = confusion(flagged, label)
    assert (got["tp"], got["fp"], got["fn"], got["tn"]) == (2, 1, 1, 6)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 3)
    assert got["false_positive_rate"] == pytest.approx(1 / 7)


def test_confusion_with_nothing_flagged_has_no_precision() -> None:
    got = confusion(np.zeros(3, bool), np.array([0, 1, 0], bool))
    assert got["precision"] is None
    assert got["recall"] == 0.0


def test_ranking_known_values() -> None:
    # Pairs (pos, neg): 0.9>0.1, 0.9>0.6, 0.4>0.1, 0.4<0.6 -> AUC 3/4.
    score = np.array([0.9, 0.6, 0.4, 0.1])
    label = np.array([1, 0, 1, 0])
    got = ranking(score, label)
    assert got["roc_auc"] == pytest.approx(0.75)
    # Ranked: 1 (P=1/1), 0, 1 (P=2/3): AP = (1 + 2/3) / 2.
    assert got["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert ranking(score, np.zeros(4)) == {"roc_auc": None, "average_precision": None}


def test_card_precision_at_k_per_day() -> None:
    rows = [
        # day 0: cards a (fraud, two rows: max score 0.9), b (legit 0.8), c (fraud 0.1)
        ("a", 0, 0.2, 1),
        ("a", 1000, 0.9, 0),
        ("b", 2000, 0.8, 0),
        ("c", 3000, 0.1, 1),
        # day 1: card a legit at 0.95, d fraud at 0.5
        ("a", DAY_MS + 5, 0.95, 0),
        ("d", DAY_MS + 6, 0.5, 1),
    ]
    frame = pl.DataFrame(rows, schema=["customer_id", "ts", "score", "label"], orient="row")
    # k=2: day 0 top = a (fraud that day), b -> 1/2; day 1 top = a, d -> 1/2.
    assert card_precision_at_k(frame, 2) == pytest.approx(0.5)
    # k=1: day 0 -> a: 1; day 1 -> a: 0 -> mean 0.5.
    assert card_precision_at_k(frame, 1) == pytest.approx(0.5)
    # k=3 counts over k even when a day has fewer cards: (2/3 + 1/3) / 2.
    assert card_precision_at_k(frame, 3) == pytest.approx(0.5)
    assert card_precision_at_k(frame.clear(), 3) is None


def test_percentiles() -> None:
    got = percentiles(np.arange(1, 101, dtype=float))
    assert got["p50"] == pytest.approx(50.5)
    assert got["p99"] == pytest.approx(99.01)
    assert percentiles(np.array([])) == {"p50": None, "p99": None}
