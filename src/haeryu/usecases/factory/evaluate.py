"""Episode-based evaluation of the detectors against the simulator's ground truth.

An episode is detected when an alert for its machine and sensor fires between its start
and its end plus ``grace_ms``; the delay is from its start to that first alert.
Precision is over incidents: an opened incident is true when it opens, on the same
machine, inside an episode's window (start to end plus grace), and false otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from haeryu.usecases.factory.metrics import episode_detection, quantile_or_none

GRACE_MS = 5_000


@dataclass
class EpisodeScore:
    """Figures of one evaluation run."""

    episodes: int
    detected: int
    incidents: int
    true_incidents: int
    per_kind: dict[str, dict[str, float | int | None]]
    delays_s: np.ndarray
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def recall(self) -> float:
        return self.detected / self.episodes if self.episodes else 0.0

    @property
    def precision(self) -> float:
        return self.true_incidents / self.incidents if self.incidents else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> dict[str, object]:
        """The JSON object ``haeryu eval factory --json`` prints last."""
        lat = self.latencies_ms
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "episodes": self.episodes,
            "detected": self.detected,
            "incidents": self.incidents,
            "false_incidents": self.incidents - self.true_incidents,
            "delay_p50_s": quantile_or_none(self.delays_s, 0.5),
            "delay_p95_s": quantile_or_none(self.delays_s, 0.95),
            "latency_p50_ms": quantile_or_none(lat, 0.5),
            "latency_p99_ms": quantile_or_none(lat, 0.99),
            "per_kind": self.per_kind,
        }


def score_episodes(
    truth: pl.DataFrame, alerts: pl.DataFrame, opened: pl.DataFrame, grace_ms: int = GRACE_MS
) -> EpisodeScore:
    """Score alerts (key, sensor, ts) and opened incidents (key, ts) against episodes.

    ``truth`` has machine, sensor, kind, start_ms, end_ms.
    """
    episodes = truth.select(
        pl.col("machine").alias("key"),
        "sensor",
        "kind",
        pl.col("start_ms").alias("start"),
        pl.col("end_ms").alias("end"),
    )
    delays = episode_detection(episodes.select("key", "sensor", "start", "end"), alerts, grace_ms)
    found = np.isfinite(delays)
    per_kind: dict[str, dict[str, float | int | None]] = {}
    kinds = episodes["kind"].to_numpy()
    for kind in sorted(set(kinds)):
        mask = kinds == kind
        per_kind[kind] = {
            "episodes": int(mask.sum()),
            "detected": int(found[mask].sum()),
            "recall": round(float(found[mask].mean()), 4),
            "delay_p50_s": quantile_or_none(delays[mask], 0.5),
        }
    windows = episodes.select("key", "start", (pl.col("end") + grace_ms).alias("until"))
    matched = (
        opened.select("key", "ts")
        .with_row_index("incident")
        .join(windows, on="key", how="inner")
        .filter(pl.col("ts").is_between(pl.col("start"), pl.col("until")))
        .select(pl.col("incident").n_unique())
        .item()
    )
    return EpisodeScore(
        episodes=episodes.height,
        detected=int(found.sum()),
        incidents=opened.height,
        true_incidents=int(matched),
        per_kind=per_kind,
        delays_s=delays,
    )
