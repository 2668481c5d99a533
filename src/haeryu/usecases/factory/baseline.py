"""What a key's first (normal) readings teach the detectors: its baseline and its model.

:func:`fit_baseline` runs once per key, when its ``train_rows`` readings are in; the
result is plain numpy arrays, so a key's state pickles into one changelog row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from haeryu.usecases.factory.arrays import rolling_mean, run_lengths
from haeryu.usecases.factory.config import DetectorConfig

# A sensor whose training spread is below this (relative to its level) counts as
# constant: its scale is floored so that noise-free sensors do not divide by zero.
_SCALE_FLOOR = 1e-6


@dataclass
class Model:
    """A learned multivariate model: kNN distance (MSET-like similarity) or PCA T²+Q."""

    kind: str
    mean: np.ndarray
    std: np.ndarray
    train: np.ndarray  # standardized training rows (kNN) or PCA components (PCA)
    eigenvalues: np.ndarray  # PCA only
    threshold: np.ndarray  # alarm level of the smoothed score (1 value; 2 for T² and Q)


@dataclass
class Baseline:
    """Per-sensor statistics of the training rows."""

    median: np.ndarray
    scale: np.ndarray  # 1.4826 x MAD, floored
    dx_p99: np.ndarray  # p99 of |x_t - x_{t-1}|
    noise: np.ndarray  # robust spread of x_t - x_{t-1}, over sqrt(2): the sensor's noise
    dx2_mean: np.ndarray  # mean of (x_t - x_{t-1})², floored
    stuck_after: np.ndarray  # identical readings in a row that count as stuck
    watched: np.ndarray  # sensors that varied in training (only these can be stuck)
    dt_median_ms: float
    pairs: np.ndarray  # per sensor pair (see sensor_pairs): correlated enough to watch
    pair_fit: np.ndarray  # per pair: slope and residual scale (standardized units)
    low: np.ndarray  # the envelope the training rows stayed in (0.1 and 99.9 % quantiles)
    high: np.ndarray
    mean: np.ndarray  # mean and standard deviation the pairs are standardized with
    std: np.ndarray
    model: Model | None


def _max_run(x: np.ndarray) -> np.ndarray:
    """Longest run of identical consecutive values per column."""
    equal = np.vstack([np.zeros((1, x.shape[1]), bool), x[1:] == x[:-1]])
    return run_lengths(equal[None], np.zeros((1, x.shape[1])))[0].max(axis=0) + 1


def fit_baseline(x: np.ndarray, ts: np.ndarray, config: DetectorConfig) -> Baseline:
    """Learn a key's baseline from its training rows ``x`` (rows x sensors, NaN = missing)."""
    filled = np.where(np.isnan(x), np.nanmedian(x, axis=0), x)
    filled = np.nan_to_num(filled)
    median = np.median(filled, axis=0)
    mad = np.median(np.abs(filled - median), axis=0) * 1.4826
    std = filled.std(axis=0)
    floor = np.maximum(np.abs(median) * 1e-3, _SCALE_FLOOR)
    scale = np.maximum(np.where(mad > 0, mad, std), floor)
    dx = np.abs(np.diff(filled, axis=0))
    dx_p99 = np.maximum(np.quantile(dx, 0.99, axis=0), scale * 0.05)
    diffs = np.diff(filled, axis=0)
    mad_dx = np.median(np.abs(diffs - np.median(diffs, axis=0)), axis=0) * 1.4826
    noise = np.maximum(mad_dx / np.sqrt(2.0), floor)
    dx2_mean = np.maximum((diffs**2).mean(axis=0), floor**2)
    watched = std > floor
    stuck_after = np.maximum(config.stuck_readings, 2 * _max_run(filled)).astype(np.float64)
    dt = np.diff(ts.astype(np.int64))
    dt_median = float(np.median(dt)) if dt.size else 0.0
    pairs, pair_fit = _fit_pairs(filled, std, config)
    model = _fit_model(filled, config) if "learned" in config.detectors else None
    return Baseline(
        median,
        scale,
        dx_p99,
        noise,
        dx2_mean,
        stuck_after,
        watched,
        dt_median,
        pairs,
        pair_fit,
        np.quantile(filled, 0.001, axis=0),
        np.quantile(filled, 0.999, axis=0),
        filled.mean(axis=0),
        np.where(std > 0, std, 1.0),
        model,
    )


def sensor_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of sensors (i < j), as two index arrays."""
    i, j = np.triu_indices(n, k=1)
    return i, j


def _fit_pairs(
    x: np.ndarray, std: np.ndarray, config: DetectorConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: watched (|r| >= corr_min in training), and slope and residual scale."""
    i, j = sensor_pairs(x.shape[1])
    live = std > 0
    z = (x - x.mean(axis=0)) / np.where(live, std, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.nan_to_num(np.corrcoef(z, rowvar=False)) if x.shape[1] > 1 else np.ones((1, 1))
    slope = r[i, j]  # standardized: the regression slope is the correlation
    watched = (np.abs(slope) >= config.corr_min) & live[i] & live[j]
    resid = z[:, j] - slope * z[:, i]
    return watched, np.stack([slope, np.maximum(resid.std(axis=0), 0.1)], axis=1)


def knn_distance(
    z: np.ndarray, train: np.ndarray, k: int, *, leave_one_out: bool = False
) -> np.ndarray:
    """Mean distance of rows to their ``k`` nearest training rows (keys x rows)."""
    d2 = (
        (z**2).sum(-1)[:, :, None]
        + (train**2).sum(-1)[:, None, :]
        - 2.0 * z @ train.transpose(0, 2, 1)
    )
    start = 1 if leave_one_out else 0
    nearest = np.partition(d2, start + k - 1, axis=2)[:, :, start : start + k]
    return np.sqrt(np.maximum(nearest, 0.0)).mean(axis=2).astype(np.float64)


def model_scores(
    kind: str, z: np.ndarray, train: np.ndarray, eig: np.ndarray, k: int
) -> np.ndarray:
    """Raw scores of standardized rows ``z`` (keys x rows x sensors).

    kNN: one column, the mean distance to the nearest training rows.  PCA: two columns,
    T² (``train`` holds the components, padded with zero rows) and Q.
    """
    if kind == "knn":
        return knn_distance(z, train, k)[:, :, None]
    scores = z @ train.transpose(0, 2, 1)
    t2 = (scores**2 / eig[:, None, :]).sum(axis=2)
    q = ((z - scores @ train) ** 2).sum(axis=2)
    return np.stack([t2, q], axis=2)


def _fit_model(x: np.ndarray, config: DetectorConfig) -> Model | None:
    if config.model == "none":
        return None
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (x - mean) / std
    sensors = x.shape[1]
    if config.model == "knn":
        stride = max(1, -(-len(z) // config.model_max_rows))
        train = z[::stride][: config.model_max_rows]
        raw = knn_distance(z[None], train[None], config.knn_neighbors)[0][:, None]
        # Rows of the kNN set are their own nearest neighbour: score them leaving it out.
        own = knn_distance(train[None], train[None], config.knn_neighbors, leave_one_out=True)[0]
        raw[::stride][: len(own), 0] = own
        model = Model("knn", mean, std, train, np.ones(1), np.zeros(1))
    else:
        _, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        eig = s**2 / max(len(z) - 1, 1)
        share = np.cumsum(eig) / max(eig.sum(), 1e-12)
        n = int(np.searchsorted(share, config.pca_variance) + 1)
        comps = np.zeros((sensors, sensors))
        comps[:n] = vt[:n]
        eigs = np.ones(sensors)
        eigs[:n] = np.maximum(eig[:n], 1e-12)
        model = Model("pca", mean, std, comps, eigs, np.zeros(2))
        raw = model_scores("pca", z[None], comps[None], eigs[None], config.knn_neighbors)[0]
    smooth = rolling_mean(raw[None], np.zeros((1, 0, raw.shape[1])), config.model_window)[0]
    level = np.quantile(smooth, config.model_quantile, axis=0) * config.model_factor
    model.threshold = np.maximum(level, 1e-9)
    return model
