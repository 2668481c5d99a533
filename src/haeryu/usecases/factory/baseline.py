"""What a key's first (normal) readings teach the detectors: its baseline and its model.

:func:`fit_baseline` runs once per key, when its ``train_rows`` readings are in; the
result is plain numpy arrays, so a key's state pickles into one changelog row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    stuck_after: np.ndarray  # identical readings in a row that count as stuck
    watched: np.ndarray  # sensors that varied in training (only these can be stuck)
    dt_median_ms: float
    pairs: np.ndarray  # (p, 2) indices of strongly correlated sensor pairs
    pair_fit: np.ndarray  # (p, 3): intercept, slope, residual scale (standardized units)
    model: Model | None


def _max_run(x: np.ndarray) -> np.ndarray:
    """Longest run of identical consecutive values per column."""
    equal = np.vstack([np.zeros((1, x.shape[1]), bool), x[1:] == x[:-1]])
    return run_lengths(equal, np.zeros(x.shape[1])).max(axis=0) + 1


def run_lengths(equal: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Per column, how many ``True`` in a row end at each row (continuing ``start``)."""
    n = equal.shape[0]
    idx = np.arange(1, n + 1, dtype=np.float64)[:, None]
    last_break = np.maximum.accumulate(np.where(equal, 0.0, idx), axis=0)
    runs = idx - last_break
    # Rows before the first break continue the run carried over from the last batch.
    no_break_yet = last_break == 0
    return np.where(no_break_yet, runs + start[None, :], runs)


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
    watched = std > floor
    stuck_after = np.maximum(config.stuck_readings, 2 * _max_run(filled)).astype(np.float64)
    dt = np.diff(ts.astype(np.int64))
    dt_median = float(np.median(dt)) if dt.size else 0.0
    pairs, pair_fit = _fit_pairs(filled, std, config)
    model = _fit_model(filled, config) if "learned" in config.detectors else None
    return Baseline(median, scale, dx_p99, stuck_after, watched, dt_median, pairs, pair_fit, model)


def _fit_pairs(
    x: np.ndarray, std: np.ndarray, config: DetectorConfig
) -> tuple[np.ndarray, np.ndarray]:
    live = np.flatnonzero(std > 0)
    if live.size < 2:
        return np.zeros((0, 2), np.int64), np.zeros((0, 3))
    z = (x[:, live] - x[:, live].mean(axis=0)) / std[live]
    r = np.corrcoef(z, rowvar=False)
    i, j = np.triu_indices(live.size, k=1)
    strong = np.abs(r[i, j]) >= config.corr_min
    pairs = np.stack([live[i[strong]], live[j[strong]]], axis=1)
    fits = []
    for a, b in zip(i[strong], j[strong], strict=True):
        slope = r[a, b]  # standardized: the regression slope is the correlation
        resid = z[:, b] - slope * z[:, a]
        fits.append((0.0, slope, max(float(resid.std()), 0.1)))
    return pairs.astype(np.int64), np.array(fits).reshape(-1, 3)


def _knn_distance(z: np.ndarray, train: np.ndarray, k: int, *, leave_one_out: bool) -> np.ndarray:
    d2 = (z**2).sum(1)[:, None] + (train**2).sum(1)[None, :] - 2.0 * z @ train.T
    d = np.sqrt(np.maximum(d2, 0.0))
    d.sort(axis=1)
    start = 1 if leave_one_out else 0
    return d[:, start : start + k].mean(axis=1)


def model_scores(model: Model, x: np.ndarray, k: int) -> np.ndarray:
    """Raw model scores of rows ``x`` (rows x 1 for kNN, rows x 2 for PCA T² and Q)."""
    z = (x - model.mean) / model.std
    if model.kind == "knn":
        return _knn_distance(z, model.train, k, leave_one_out=False)[:, None]
    scores = z @ model.train.T
    t2 = (scores**2 / model.eigenvalues).sum(axis=1)
    q = ((z - scores @ model.train) ** 2).sum(axis=1)
    return np.stack([t2, q], axis=1)


def rolling_mean(x: np.ndarray, tail: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` rows, continuing the ``tail`` of earlier rows."""
    if window <= 1:
        return x
    full = np.vstack([tail, x])
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(full, axis=0)])
    end = np.arange(tail.shape[0] + 1, full.shape[0] + 1)
    start = np.maximum(end - window, 0)
    return (csum[end] - csum[start]) / (end - start)[:, None]


def _fit_model(x: np.ndarray, config: DetectorConfig) -> Model | None:
    if config.model == "none":
        return None
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (x - mean) / std
    empty = np.zeros((0,))
    if config.model == "knn":
        raw = _knn_distance(z, z, config.knn_neighbors, leave_one_out=True)[:, None]
        model = Model("knn", mean, std, z, empty, empty)
    else:
        _, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        eig = s**2 / max(len(z) - 1, 1)
        share = np.cumsum(eig) / max(eig.sum(), 1e-12)
        n = int(np.searchsorted(share, config.pca_variance) + 1)
        model = Model("pca", mean, std, vt[:n], np.maximum(eig[:n], 1e-12), empty)
        raw = model_scores(model, x, config.knn_neighbors)
    smooth = rolling_mean(raw, np.zeros((0, raw.shape[1])), config.model_window)
    level = np.quantile(smooth, config.model_quantile, axis=0) * config.model_factor
    model.threshold = np.maximum(level, 1e-9)
    return model
