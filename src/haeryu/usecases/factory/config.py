"""Detector settings: one frozen dataclass, fixed before a run (never tuned on test data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

LearnedModel = Literal["knn", "pca", "none"]
DETECTORS: tuple[str, ...] = (
    "limit",
    "zscore",
    "ewma",
    "roc",
    "noise",
    "stuck",
    "missing",
    "correlation",
    "learned",
)


@dataclass(frozen=True)
class Limits:
    """Hard operating limits of one sensor (per equipment type): outside them is an alarm."""

    low: float = float("-inf")
    high: float = float("inf")


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of the detector bank.

    Every detector learns its baseline per key (machine) from that key's first
    ``train_rows`` readings, which are assumed normal; nothing fires from a learned
    detector before that (``limit`` and ``missing`` fire from the first reading).
    Thresholds are in units of the baseline's robust scale, so one setting fits sensors
    of any unit.
    """

    train_rows: int = 400
    detectors: tuple[str, ...] = DETECTORS
    #: |x - EWMA level| / noise scale above this is a spike (noise: robust spread of
    #: the training rows' first differences, so load changes do not widen it).
    z_threshold: float = 10.0
    #: smoothing of the EWMA level the z-score compares with (per reading).
    z_alpha: float = 0.3
    #: the fast EWMA level beyond the training envelope by this many noise scales is a
    #: shift or a drift.
    ewma_threshold: float = 6.0
    ewma_alpha: float = 0.1
    #: EWMA of |dx| above this many times the training p99 of |dx|: too fast a change.
    roc_factor: float = 4.0
    roc_alpha: float = 0.5
    #: EWMA of dx² above this many times its training mean: the sensor got noisy.
    noise_factor: float = 6.0
    noise_alpha: float = 0.05
    #: this many identical readings in a row of a sensor that varied in training.
    stuck_readings: int = 20
    #: correlation: pairs with |r| >= this in training are watched.
    corr_min: float = 0.8
    #: EWMA of the pair's regression residual, in training residual scales.
    corr_threshold: float = 6.0
    corr_alpha: float = 0.1
    #: learned multivariate model on the training rows of each key.
    model: LearnedModel = "knn"
    knn_neighbors: int = 5
    #: the kNN model keeps at most this many training rows (evenly spaced).
    model_max_rows: int = 400
    pca_variance: float = 0.85
    #: model score quantile of the training rows that is the alarm level (x factor).
    model_quantile: float = 0.99
    model_factor: float = 1.0
    #: rolling mean of the model score over this many readings before the threshold.
    model_window: int = 5
    #: a gap between two readings of a key longer than 5 usual intervals, and than
    #: this, is missing data (shorter ones are the jitter of out-of-order delivery).
    min_gap_ms: int = 1_000
    #: per-sensor hard limits, e.g. {"temperature": Limits(high=95)}.
    limits: Mapping[str, Limits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(
                f"unknown detector(s) {sorted(unknown)}; choose from {', '.join(DETECTORS)}"
            )
        if self.train_rows < 2:
            raise ValueError("train_rows must be at least 2")
        if self.model_window < 1 or self.stuck_readings < 2:
            raise ValueError("model_window must be >= 1 and stuck_readings >= 2")
