"""Metrics on hand-made cases whose answers are counted by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from haeryu.usecases.factory.metrics import (
    episode_detection,
    label_episodes,
    point_delays,
    point_metrics,
)


def test_point_metrics_count_each_row_once() -> None:
    predicted = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    label = np.array([1, 0, 1, 0, 1, 0, 0, 1], dtype=bool)
    m = point_metrics(predicted, label)
    assert (m.tp, m.fp, m.fn, m.tn) == (2, 1, 2, 3)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 4)
    assert m.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert m.far == pytest.approx(1 / 4)
    assert m.mar == pytest.approx(2 / 4)
    total = m + m
    assert (total.tp, total.tn) == (4, 6)


def test_point_metrics_refuse_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        point_metrics(np.ones(3, bool), np.ones(2, bool))


def test_label_episodes_and_delays_per_key() -> None:
    keys = np.array(["a"] * 6 + ["b"] * 4)
    ts = np.array([0, 1000, 2000, 3000, 4000, 5000, 0, 1000, 2000, 3000])
    label = np.array([0, 1, 1, 1, 0, 1, 1, 1, 0, 0], dtype=bool)
    episodes = label_episodes(keys, ts, label)
    assert episodes.rows() == [("a", 1000, 3000), ("a", 5000, 5000), ("b", 0, 1000)]
    flagged = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
    delays = point_delays(episodes, keys, ts, flagged)
    assert delays[0] == 2.0 and np.isnan(delays[1]) and delays[2] == 1.0


def test_episode_detection_matches_key_sensor_and_grace() -> None:
    episodes = pl.DataFrame(
        {
            "key": ["m1", "m1", "m2"],
            "sensor": ["rpm", "current", "rpm"],
            "start": [1000, 10_000, 0],
            "end": [2000, 12_000, 500],
        }
    )
    alerts = pl.DataFrame(
        {
            # m1/rpm: 1.5 s after its start; m1/current: only a pair alert, 0.5 s after the
            # end, inside the 1 s grace; m2/rpm: an alert of the wrong sensor, and one too late.
            "key": ["m1", "m1", "m2", "m2"],
            "sensor": ["rpm", "current|temperature", "current", "rpm"],
            "ts": [2500, 12_500, 100, 1600],
        }
    )
    delays = episode_detection(episodes, alerts, grace_ms=1000)
    assert list(np.isnan(delays)) == [False, False, True]
    assert delays[0] == 1.5 and delays[1] == 2.5
