"""Episode scoring on a hand-made case, and incidents opened, updated and closed."""

from __future__ import annotations

import polars as pl
import pytest

from haeryu.usecases.factory.evaluate import score_episodes
from haeryu.usecases.factory.incidents import IncidentTracker


def test_score_episodes_counts_by_hand() -> None:
    truth = pl.DataFrame(
        {
            "machine": ["m1", "m1", "m2", "m3"],
            "sensor": ["rpm", "temperature", "current", "rpm"],
            "kind": ["spike", "stuck", "stuck", "noise"],
            "start_ms": [10_000, 40_000, 10_000, 0],
            "end_ms": [10_200, 50_000, 20_000, 5_000],
        }
    )
    alerts = pl.DataFrame(
        {
            # m1/rpm found 1 s after its start; m1/temperature found 4 s after its end
            # (inside the 5 s grace); m2/current missed (alert on another sensor);
            # m3/rpm found by an alert naming every sensor.
            "key": ["m1", "m1", "m2", "m3"],
            "sensor": ["rpm", "temperature", "vibration", "*"],
            "ts": [11_000, 54_000, 12_000, 2_000],
        }
    )
    opened = pl.DataFrame(
        {
            # Three incidents inside an episode window of their machine, one outside.
            "key": ["m1", "m2", "m3", "m2"],
            "ts": [11_000, 12_000, 2_000, 90_000],
        }
    )
    score = score_episodes(truth, alerts, opened, grace_ms=5_000)
    assert (score.episodes, score.detected) == (4, 3)
    assert score.recall == pytest.approx(0.75)
    assert (score.incidents, score.true_incidents) == (4, 3)
    assert score.precision == pytest.approx(0.75)
    assert score.f1 == pytest.approx(0.75)
    assert sorted(score.delays_s[~pl.Series(score.delays_s).is_nan().to_numpy()]) == [
        1.0,
        2.0,
        14.0,
    ]
    assert score.per_kind["stuck"] == {
        "episodes": 2,
        "detected": 1,
        "recall": 0.5,
        "delay_p50_s": 14.0,
    }
    summary = score.summary()
    assert summary["delay_p50_s"] == 2.0
    assert {"precision", "recall", "f1", "delay_p95_s", "latency_p99_ms", "per_kind"} <= set(
        summary
    )


def alerts(ts: list[int], key: str = "m1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "key": [key] * len(ts),
            "kind": ["spike"] * len(ts),
            "sensor": ["rpm"] * len(ts),
            "ts": ts,
            "score": [1.5] * len(ts),
            "reason_en": ["rpm jumped"] * len(ts),
            "reason_ko": ["회전수 급변"] * len(ts),
        }
    )


def test_incident_opens_updates_and_closes() -> None:
    tracker = IncidentTracker(close_after_ms=5_000, update_every_ms=5_000)
    first = tracker.process(alerts([1_000, 1_100]), {"m1": 1_200})
    assert first.select("status", "alerts").rows() == [("opened", 2)]
    second = tracker.process(alerts([6_500]), {"m1": 6_600})
    assert second.select("status", "alerts").rows() == [("updated", 3)]
    quiet = tracker.process(alerts([])[:0], {"m1": 9_000})
    assert quiet.is_empty()  # 2.5 s without an alert: still open
    closed = tracker.process(alerts([])[:0], {"m1": 11_600})
    assert closed.select("status", "ts", "alerts").rows() == [("closed", 11_600, 3)]
    assert closed["incident_id"][0] == first["incident_id"][0]
    again = tracker.process(alerts([20_000]), {"m1": 20_000})
    assert (
        again["status"].to_list() == ["opened"]
        and again["incident_id"][0] != first["incident_id"][0]
    )
