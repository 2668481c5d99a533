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
    #: |x - slow EWMA| / robust scale above this is a spike.
    z_threshold: float = 8.0
    #: smoothing of the slow EWMA level used by the z-score (per reading).
    z_alpha: float = 0.05
    #: |fast EWMA - training median| / robust scale above this is a shift or a drift.
    ewma_threshold: float = 6.0
    ewma_alpha: float = 0.1
    #: EWMA of |dx| above this many times the training p99 of |dx|: too fast a change.
    roc_factor: float = 4.0
    roc_alpha: float = 0.5
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
    pca_variance: float = 0.85
    #: model score quantile of the training rows that is the alarm level (x factor).
    model_quantile: float = 0.99
    model_factor: float = 1.0
    #: rolling mean of the model score over this many readings before the threshold.
    model_window: int = 5
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
