"""The detector bank: every detector over a batch of readings, with state per key.

A batch is rows of (key, event time, one value per sensor; NaN = missing).  Rows are
grouped by key and each key's rows go through the detectors as numpy arrays: one
Python step per key and batch, never one per reading.  A key's state
(:class:`KeyState`) carries everything the detectors need across batches, so a
replay of a file in one batch and a stream cut into many batches give the same alerts.
:func:`haeryu.usecases.factory.stateful.detector_state_fn` wraps the bank for the
engine's ``update_state``.

Detectors and the kind of alert they raise (see docs/factory.md):

| detector | kind | fires when |
|---|---|---|
| limit | limit | a value is outside the configured limits of its sensor |
| zscore | spike | a value is far from the slow EWMA level, in robust scales |
| ewma | shift | the fast EWMA level is far from the training median (shift, drift) |
| roc | rate_of_change | the EWMA of |dx| is many times the training p99 of |dx| |
| stuck | stuck | a sensor that varied in training repeats one value too long |
| missing | missing | a value is missing, or a gap in time far above the usual one |
| correlation | correlation | two sensors correlated in training stop following each other |
| learned | multivariate | the kNN (or PCA T²+Q) model finds the rows unlike training |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.signal import lfilter

from haeryu.usecases.factory.baseline import (
    Baseline,
    fit_baseline,
    model_scores,
    rolling_mean,
    run_lengths,
)
from haeryu.usecases.factory.config import DetectorConfig, Limits
from haeryu.usecases.factory.reasons import with_reasons

KINDS: dict[str, str] = {
    "limit": "limit",
    "zscore": "spike",
    "ewma": "shift",
    "roc": "rate_of_change",
    "stuck": "stuck",
    "missing": "missing",
    "correlation": "correlation",
    "learned": "multivariate",
}

ALERT_SCHEMA = pl.Schema(
    {
        "key": pl.String,
        "ts": pl.Int64,
        "detector": pl.String,
        "kind": pl.String,
        "sensor": pl.String,
        "value": pl.Float64,
        "score": pl.Float64,
        "severity": pl.String,
        "reason_en": pl.String,
        "reason_ko": pl.String,
    }
)
"""Alerts: ``ts`` is the reading's event time (epoch ms), ``score`` >= 1 means alarm."""

# A gap of this many usual intervals between two readings of a key is missing data.
_GAP_FACTOR = 5.0


@dataclass
class KeyState:
    """What the bank keeps for one key between batches."""

    n_sensors: int
    seen: int = 0
    train_x: list[np.ndarray] = field(default_factory=list)
    train_ts: list[np.ndarray] = field(default_factory=list)
    baseline: Baseline | None = None
    last: np.ndarray | None = None  # last value per sensor (NaN before the first)
    last_ts: int | None = None
    runs: np.ndarray | None = None  # identical readings in a row, per sensor
    z_level: np.ndarray | None = None
    ewma_level: np.ndarray | None = None
    roc_level: np.ndarray | None = None
    corr_level: np.ndarray | None = None
    score_tail: np.ndarray | None = None


@dataclass
class _Hits:
    """Alerts of one detector: row indices (into the key's rows), sensor names, scores."""

    rows: np.ndarray
    sensors: np.ndarray
    scores: np.ndarray
    values: np.ndarray


def _ewm(x: np.ndarray, alpha: float, start: np.ndarray) -> np.ndarray:
    """EWMA down the rows, continuing from ``start`` (one level per column)."""
    zi = ((1.0 - alpha) * start)[None, :]
    out, _ = lfilter([alpha], [1.0, alpha - 1.0], x, axis=0, zi=zi)
    return np.asarray(out)


def _ffill(x: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Missing values take the sensor's previous value (or its last of the previous batch)."""
    full = np.vstack([last[None, :], x])
    idx = np.where(np.isnan(full), 0, np.arange(full.shape[0])[:, None])
    idx = np.maximum.accumulate(idx, axis=0)
    return full[idx, np.arange(full.shape[1])[None, :]][1:]


class DetectorBank:
    """Runs the configured detectors over batches of one sensor layout.

    Parameters
    ----------
    sensors
        Names of the value columns, in the order of the matrix given to :meth:`process`.
    config
        Thresholds and the detectors to run.
    """

    def __init__(self, sensors: Sequence[str], config: DetectorConfig | None = None) -> None:
        self.sensors = list(sensors)
        self.config = config or DetectorConfig()
        self.states: dict[str, KeyState] = {}
        self._names = np.array(self.sensors, dtype=object)

    def process(
        self, keys: np.ndarray, ts: np.ndarray, x: np.ndarray
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """Score one batch: rows in event-time order per key.

        Returns the alerts (:data:`ALERT_SCHEMA`) and, per input row, whether any
        detector fired on it.
        """
        x = np.asarray(x, dtype=np.float64)
        ts = np.asarray(ts, dtype=np.int64)
        flagged = np.zeros(len(x), dtype=bool)
        parts: list[pl.DataFrame] = []
        if len(x) == 0:
            return ALERT_SCHEMA.to_frame(), flagged
        key_series = pl.Series(keys, dtype=pl.String)
        order = np.argsort(key_series.to_numpy(), kind="stable")
        sorted_keys = key_series.to_numpy()[order]
        bounds = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        for seg in np.split(order, bounds):
            key = str(key_series[int(seg[0])])
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = KeyState(len(self.sensors))
            hits = self._key(state, ts[seg], x[seg])
            for detector, h in hits:
                if len(h.rows) == 0:
                    continue
                flagged[seg[h.rows]] = True
                parts.append(
                    pl.DataFrame(
                        {
                            "key": np.full(len(h.rows), key, dtype=object),
                            "ts": ts[seg][h.rows],
                            "detector": np.full(len(h.rows), detector, dtype=object),
                            "kind": np.full(len(h.rows), KINDS[detector], dtype=object),
                            "sensor": h.sensors,
                            "value": h.values,
                            "score": h.scores,
                        },
                        schema_overrides={"key": pl.String, "detector": pl.String},
                    )
                )
        if not parts:
            return ALERT_SCHEMA.to_frame(), flagged
        alerts = pl.concat(parts, how="vertical_relaxed").sort("ts", "key", maintain_order=True)
        return with_reasons(alerts).select(ALERT_SCHEMA.names()), flagged

    def _key(self, state: KeyState, ts: np.ndarray, x: np.ndarray) -> list[tuple[str, _Hits]]:
        cfg = self.config
        hits: list[tuple[str, _Hits]] = []
        if state.last is None:
            state.last = np.full(x.shape[1], np.nan)
        if "limit" in cfg.detectors and cfg.limits:
            hits.append(("limit", self._limits(x)))
        if "missing" in cfg.detectors:
            hits.append(("missing", self._missing(state, ts, x)))
        first = 0
        if state.baseline is None:
            need = cfg.train_rows - state.seen
            take = min(need, len(x))
            state.train_x.append(x[:take])
            state.train_ts.append(ts[:take])
            state.seen += take
            first = take
            if state.seen >= cfg.train_rows:
                tx = np.vstack(state.train_x)
                state.baseline = fit_baseline(tx, np.concatenate(state.train_ts), cfg)
                state.train_x, state.train_ts = [], []
                self._start(state, tx)
        if state.baseline is not None and first < len(x):
            hits.extend((d, _shift(h, first)) for d, h in self._learned(state, x[first:]))
        elif state.baseline is None:
            state.last = _ffill(x, state.last)[-1]
        if len(ts):
            state.last_ts = int(ts[-1])
        return hits

    def _start(self, state: KeyState, tx: np.ndarray) -> None:
        base = state.baseline
        assert base is not None
        filled = _ffill(tx, np.full(tx.shape[1], np.nan))
        filled = np.where(np.isnan(filled), base.median, filled)
        state.last = filled[-1]
        state.z_level = base.median.copy()
        state.ewma_level = base.median.copy()
        state.roc_level = np.zeros(tx.shape[1])
        state.runs = np.zeros(tx.shape[1])
        state.corr_level = np.zeros(len(base.pairs))
        model = base.model
        width = 1 if model is None or model.kind == "knn" else 2
        state.score_tail = np.zeros((0, width))

    def _limits(self, x: np.ndarray) -> _Hits:
        low = np.array([self.config.limits.get(s, _NO_LIMIT).low for s in self.sensors])
        high = np.array([self.config.limits.get(s, _NO_LIMIT).high for s in self.sensors])
        with np.errstate(invalid="ignore"):
            over = np.where(x > high, (x - high) / np.maximum(np.abs(high), 1e-9), 0.0)
            under = np.where(x < low, (low - x) / np.maximum(np.abs(low), 1e-9), 0.0)
        bad = (x > high) | (x < low)
        return self._cells(bad, 1.0 + over + under, x)

    def _missing(self, state: KeyState, ts: np.ndarray, x: np.ndarray) -> _Hits:
        cells = self._cells(np.isnan(x), np.ones_like(x), x)
        base = state.baseline
        if base is None or base.dt_median_ms <= 0:
            return cells
        prev = np.concatenate([[state.last_ts if state.last_ts is not None else ts[0]], ts[:-1]])
        gap = (ts - prev) / (_GAP_FACTOR * base.dt_median_ms)
        rows = np.flatnonzero(gap > 1.0)
        gaps = _Hits(
            rows, np.full(len(rows), "*", dtype=object), gap[rows], np.full(len(rows), np.nan)
        )
        return _concat(cells, gaps)

    def _cells(self, mask: np.ndarray, score: np.ndarray, x: np.ndarray) -> _Hits:
        rows, cols = np.nonzero(mask)
        return _Hits(rows, self._names[cols], score[rows, cols], x[rows, cols])

    def _learned(self, state: KeyState, raw: np.ndarray) -> list[tuple[str, _Hits]]:
        cfg = self.config
        base = state.baseline
        assert base is not None and state.last is not None
        x = _ffill(raw, state.last)
        x = np.where(np.isnan(x), base.median, x)
        prev = np.vstack([state.last[None, :], x[:-1]])
        out: list[tuple[str, _Hits]] = []
        on = cfg.detectors
        assert state.z_level is not None and state.ewma_level is not None
        assert state.roc_level is not None and state.runs is not None
        if "zscore" in on:
            level = _ewm(x, cfg.z_alpha, state.z_level)
            before = np.vstack([state.z_level[None, :], level[:-1]])
            z = np.abs(x - before) / base.scale
            out.append(("zscore", self._cells(z > cfg.z_threshold, z / cfg.z_threshold, raw)))
            state.z_level = level[-1]
        if "ewma" in on:
            level = _ewm(x, cfg.ewma_alpha, state.ewma_level)
            z = np.abs(level - base.median) / base.scale
            out.append(("ewma", self._cells(z > cfg.ewma_threshold, z / cfg.ewma_threshold, raw)))
            state.ewma_level = level[-1]
        if "roc" in on:
            level = _ewm(np.abs(x - prev), cfg.roc_alpha, state.roc_level)
            r = level / (cfg.roc_factor * base.dx_p99)
            out.append(("roc", self._cells(r > 1.0, r, raw)))
            state.roc_level = level[-1]
        if "stuck" in on:
            equal = (raw == prev) & ~np.isnan(raw)
            runs = run_lengths(equal, state.runs)
            n = (runs + 1) / base.stuck_after
            stuck = (n >= 1.0) & base.watched[None, :]
            out.append(("stuck", self._cells(stuck, n, raw)))
            state.runs = runs[-1]
        if "correlation" in on and len(base.pairs):
            out.append(("correlation", self._correlation(state, x, raw)))
        if "learned" in on and base.model is not None:
            out.append(("learned", self._model(state, x, raw)))
        state.last = x[-1]
        return out

    def _correlation(self, state: KeyState, x: np.ndarray, raw: np.ndarray) -> _Hits:
        base = state.baseline
        assert base is not None
        mean = base.median
        a, b = base.pairs[:, 0], base.pairs[:, 1]
        std = base.scale
        za = (x[:, a] - mean[a]) / std[a]
        zb = (x[:, b] - mean[b]) / std[b]
        resid = (zb - base.pair_fit[:, 1] * za - base.pair_fit[:, 0]) / base.pair_fit[:, 2]
        assert state.corr_level is not None
        level = _ewm(resid, self.config.corr_alpha, state.corr_level)
        state.corr_level = level[-1]
        score = np.abs(level) / self.config.corr_threshold
        rows, cols = np.nonzero(score > 1.0)
        names = np.array(
            [f"{self.sensors[i]}|{self.sensors[j]}" for i, j in base.pairs], dtype=object
        )
        return _Hits(rows, names[cols], score[rows, cols], raw[rows, b[cols]])

    def _model(self, state: KeyState, x: np.ndarray, raw: np.ndarray) -> _Hits:
        cfg = self.config
        base = state.baseline
        assert base is not None and base.model is not None and state.score_tail is not None
        model = base.model
        scores = model_scores(model, x, cfg.knn_neighbors)
        smooth = rolling_mean(scores, state.score_tail, cfg.model_window)
        keep = max(cfg.model_window - 1, 0)
        state.score_tail = (
            np.vstack([state.score_tail, scores])[-keep:] if keep else state.score_tail
        )
        ratio = (smooth / model.threshold).max(axis=1)
        rows = np.flatnonzero(ratio > 1.0)
        # Blame the sensor furthest from its training mean, in training standard deviations.
        z = np.abs((x[rows] - model.mean) / model.std)
        worst = z.argmax(axis=1) if len(rows) else np.zeros(0, dtype=np.int64)
        return _Hits(rows, self._names[worst], ratio[rows], raw[rows, worst])


_NO_LIMIT = Limits()


def _shift(h: _Hits, offset: int) -> _Hits:
    return _Hits(h.rows + offset, h.sensors, h.scores, h.values)


def _concat(a: _Hits, b: _Hits) -> _Hits:
    return _Hits(
        np.concatenate([a.rows, b.rows]),
        np.concatenate([a.sensors, b.sensors]),
        np.concatenate([a.scores, b.scores]),
        np.concatenate([a.values, b.values]),
    )
