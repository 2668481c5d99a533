"""Point-wise and episode metrics of detections against labels.

Point-wise (the SKAB protocol): every scored row is a TP, FP, FN or TN.  Episode-wise
(``haeryu eval factory``): an anomaly episode is detected when an alert for its key and
sensor fires between its start and its end plus a grace period.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class PointMetrics:
    """Confusion counts of row predictions and the rates derived from them."""

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 0.0

    @property
    def far(self) -> float:
        """False alarm rate: normal rows flagged, over normal rows."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def mar(self) -> float:
        """Missed alarm rate: anomalous rows not flagged, over anomalous rows."""
        return self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0

    def __add__(self, other: PointMetrics) -> PointMetrics:
        return PointMetrics(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def as_dict(self) -> dict[str, float | int]:
        """Counts and rates, as the JSON line of ``haeryu detect replay`` shows them."""
        out: dict[str, float | int] = asdict(self)
        for name in ("precision", "recall", "f1", "far", "mar"):
            out[name] = round(getattr(self, name), 4)
        return out


def point_metrics(predicted: np.ndarray, label: np.ndarray) -> PointMetrics:
    """Confusion counts of boolean predictions against boolean labels, row by row."""
    p = np.asarray(predicted, dtype=bool)
    y = np.asarray(label, dtype=bool)
    if p.shape != y.shape:
        raise ValueError(f"{p.shape[0]} predictions for {y.shape[0]} labels")
    return PointMetrics(
        int((p & y).sum()), int((p & ~y).sum()), int((~p & y).sum()), int((~p & ~y).sum())
    )


def label_episodes(keys: np.ndarray, ts: np.ndarray, label: np.ndarray) -> pl.DataFrame:
    """Runs of consecutive labeled rows per key: key, start and end (event times)."""
    frame = pl.DataFrame({"key": keys, "ts": ts, "label": np.asarray(label, dtype=bool)})
    runs = frame.with_columns(
        (pl.col("label") != pl.col("label").shift(1).over("key"))
        .fill_null(True)
        .cum_sum()
        .alias("run")
    )
    return (
        runs.filter(pl.col("label"))
        .group_by("key", "run", maintain_order=True)
        .agg(pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end"))
        .drop("run")
    )


def point_delays(
    episodes: pl.DataFrame, keys: np.ndarray, ts: np.ndarray, flagged: np.ndarray
) -> np.ndarray:
    """Seconds from each episode's start to the first flagged row inside it (NaN: missed)."""
    hits = pl.DataFrame({"key": keys, "ts": ts}).filter(pl.Series(np.asarray(flagged, dtype=bool)))
    return _first_hit_delay(episodes, hits, grace_ms=0)


def _first_hit_delay(episodes: pl.DataFrame, hits: pl.DataFrame, grace_ms: int) -> np.ndarray:
    if episodes.is_empty():
        return np.zeros(0)
    ep = episodes.with_row_index("episode")
    joined = ep.join(hits.select("key", pl.col("ts").alias("hit")), on="key", how="inner").filter(
        (pl.col("hit") >= pl.col("start")) & (pl.col("hit") <= pl.col("end") + grace_ms)
    )
    first = joined.group_by("episode").agg(
        ((pl.col("hit") - pl.col("start")).min() / 1000).alias("d")
    )
    out = ep.select("episode").join(first, on="episode", how="left").sort("episode")
    return out["d"].cast(pl.Float64).fill_null(np.nan).to_numpy()


def episode_detection(episodes: pl.DataFrame, alerts: pl.DataFrame, grace_ms: int) -> np.ndarray:
    """Delay in seconds of the first alert for each episode's key and sensor (NaN: missed).

    ``episodes`` has key, sensor, start, end; ``alerts`` has key, sensor, ts.  An alert
    naming several sensors (``"current|temperature"``) or all of them (``"*"``) counts
    for each of them.
    """
    expanded = alerts.select("key", "ts", pl.col("sensor").str.split("|").alias("sensor")).explode(
        "sensor"
    )
    everything = expanded.filter(pl.col("sensor") == "*").drop("sensor")
    named = expanded.filter(pl.col("sensor") != "*")
    ep = episodes.with_row_index("episode")
    candidates = pl.concat(
        [
            ep.join(named, on=["key", "sensor"], how="inner").select(
                "episode", "start", "end", "ts"
            ),
            ep.join(everything, on="key", how="inner").select("episode", "start", "end", "ts"),
        ]
    ).filter((pl.col("ts") >= pl.col("start")) & (pl.col("ts") <= pl.col("end") + grace_ms))
    first = candidates.group_by("episode").agg(
        ((pl.col("ts") - pl.col("start")).min() / 1000).alias("d")
    )
    out = ep.select("episode").join(first, on="episode", how="left").sort("episode")
    return out["d"].cast(pl.Float64).fill_null(np.nan).to_numpy()


def quantile_or_none(values: np.ndarray, q: float) -> float | None:
    """The ``q`` quantile of the finite values, or None when there are none."""
    finite = values[np.isfinite(values)]
    return round(float(np.quantile(finite, q)), 3) if finite.size else None
