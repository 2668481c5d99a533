"""Recursions over time on (keys x rows x sensors) arrays, continuing per-key state.

Every function works along axis 1 (time) for all keys at once and takes the state the
previous batch left, so cutting a stream into batches does not change the result.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_BLOCK = 64  # EWMA block: (1 - alpha)^64 stays far from underflow for any alpha used


def ewm(x: np.ndarray, alpha: float, start: np.ndarray) -> np.ndarray:
    """EWMA ``y_t = (1 - a) y_{t-1} + a x_t`` along axis 1, from ``y_{-1} = start``.

    Closed form per block of 64 rows (a lower-triangular weight matrix), so the Python
    loop runs once per 64 rows of every key together.
    """
    rows = x.shape[1]
    out = np.empty_like(x, dtype=np.float64)
    prev = np.asarray(start, dtype=np.float64)
    for lo in range(0, rows, _BLOCK):
        block = x[:, lo : lo + _BLOCK]
        n = block.shape[1]
        weights, carry = _weights(alpha, n)
        flat = block.reshape(block.shape[0], n, -1)
        y = np.matmul(weights, flat).reshape(block.shape)
        y += carry.reshape((1, n) + (1,) * (x.ndim - 2)) * prev[:, None]
        out[:, lo : lo + n] = y
        prev = y[:, -1]
    return out


@lru_cache(maxsize=512)
def _weights(alpha: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """EWMA weights of a block of ``n`` rows, and the decay of the carried level."""
    t = np.arange(n)
    lag = t[:, None] - t[None, :]
    decay = 1.0 - alpha
    weights = np.where(lag >= 0, alpha * decay ** np.maximum(lag, 0), 0.0)
    return weights, decay ** (t + 1)


def ffill(x: np.ndarray, last: np.ndarray) -> np.ndarray:
    """NaNs take the previous value along axis 1 (the first rows take ``last``)."""
    full = np.concatenate([last[:, None], x], axis=1)
    idx = np.arange(full.shape[1]).reshape((1, -1) + (1,) * (x.ndim - 2))
    idx = np.where(np.isnan(full), 0, idx)
    idx = np.maximum.accumulate(idx, axis=1)
    return np.take_along_axis(full, idx, axis=1)[:, 1:]


def run_lengths(equal: np.ndarray, start: np.ndarray) -> np.ndarray:
    """How many ``True`` in a row end at each position along axis 1 (continuing ``start``)."""
    n = equal.shape[1]
    idx = np.arange(1, n + 1, dtype=np.float64).reshape((1, -1) + (1,) * (equal.ndim - 2))
    last_break = np.maximum.accumulate(np.where(equal, 0.0, idx), axis=1)
    runs = idx - last_break
    # Rows before the first break continue the run carried over from the last batch.
    return np.where(last_break == 0, runs + start[:, None], runs)


def rolling_mean(x: np.ndarray, tail: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` rows along axis 1, continuing the ``tail`` rows.

    ``tail`` holds each key's last ``window - 1`` values (zeros-width at the start: a
    shorter tail simply averages over fewer rows).
    """
    if window <= 1:
        return x
    full = np.concatenate([tail, x], axis=1)
    csum = np.concatenate([np.zeros_like(full[:, :1]), np.cumsum(full, axis=1)], axis=1)
    end = np.arange(tail.shape[1] + 1, full.shape[1] + 1)
    start = np.maximum(end - window, 0)
    span = (end - start).reshape((1, -1) + (1,) * (x.ndim - 2))
    return (csum[:, end] - csum[:, start]) / span


def at(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per key, the row ``index[k]`` of ``x`` (keys x rows x ...)."""
    return x[np.arange(x.shape[0]), index]
