"""The detector bank: every detector over a batch of readings, with state per key.

A batch is rows of (key, event time, one value per sensor; NaN = missing).  The rows
of all keys are laid out as one (keys x rows x sensors) array and every detector runs
on it at once with numpy: no Python step per reading, nor per key once a key is
trained.  A key's state (levels, runs, tails, its baseline and model) lives in arrays
indexed by the key's slot, carried across batches, so a replay in one batch and a
stream cut into many batches raise the same alerts.  :meth:`DetectorBank.snapshot`
and :meth:`DetectorBank.restore` move one key's state in and out as bytes, which is
how the engine's ``update_state`` keeps it (see :mod:`.stateful`).

Detectors and the kind of alert they raise (see docs/factory.md):

| detector | kind | fires when |
|---|---|---|
| limit | limit | a value is outside the configured limits of its sensor |
| zscore | spike | a value is far from its EWMA level, in noise scales |
| ewma | shift | the EWMA level leaves the training envelope by many noise scales |
| roc | rate_of_change | the EWMA of |dx| is many times the training p99 of |dx| |
| noise | noise | the EWMA of dx² is many times its training mean (a noisy sensor) |
| stuck | stuck | a sensor that varied in training repeats one value too long |
| missing | missing | a value is missing, or a gap in time far above the usual one |
| correlation | correlation | two sensors correlated in training stop following each other |
| learned | multivariate | the kNN (or PCA T²+Q) model finds the rows unlike training |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from haeryu.usecases.factory.arrays import at, ewm, ffill, rolling_mean, run_lengths
from haeryu.usecases.factory.baseline import fit_baseline, model_scores, sensor_pairs
from haeryu.usecases.factory.config import DetectorConfig, Limits
from haeryu.usecases.factory.reasons import with_reasons

KINDS: dict[str, str] = {
    "limit": "limit",
    "zscore": "spike",
    "ewma": "shift",
    "roc": "rate_of_change",
    "noise": "noise",
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
"""Alerts: ``ts`` is the reading's event time (epoch ms), ``score`` > 1 means alarm."""

# A gap of this many usual intervals between two readings of a key is missing data.
_GAP_FACTOR = 5.0
_NO_LIMIT = Limits()
_LEVEL_ROWS = 512


class _Hits:
    """Alerts found in a batch: input row, detector, sensor name, score, value."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.detectors: list[np.ndarray] = []
        self.sensors: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def add(
        self,
        detector: str,
        rows: np.ndarray,
        sensors: np.ndarray,
        scores: np.ndarray,
        values: np.ndarray,
    ) -> None:
        if len(rows):
            self.rows.append(rows)
            self.detectors.append(np.full(len(rows), detector, dtype=object))
            self.sensors.append(sensors)
            self.scores.append(scores)
            self.values.append(values)


class DetectorBank:
    """Runs the configured detectors over batches of one sensor layout.

    Parameters
    ----------
    sensors
        Names of the value columns, in the order of the matrix given to :meth:`process`.
    config
        Thresholds and the detectors to run.
    max_fits
        At most this many keys fit their baseline and model in one batch (None: every
        key whose training rows are complete).  Keys that all start together would
        otherwise all fit in the same batch, which then takes seconds; a key waiting
        for its fit keeps its rows (limits and missing values are still checked), and
        its smoothed levels start from them when it fits.  With a bound, where the
        batches are cut decides which rows a waiting key does not score.
    max_wait_ms
        A key that has waited this long in event time for its fit (its newest row
        against its last training row) fits in the next batch whatever ``max_fits``
        says: when the stream is behind, batches span more event time, and the wait
        must not leave a key unscored for long.
    """

    def __init__(
        self,
        sensors: Sequence[str],
        config: DetectorConfig | None = None,
        *,
        max_fits: int | None = None,
        max_wait_ms: float | None = None,
    ) -> None:
        if max_fits is not None and max_fits < 1:
            raise ValueError("max_fits must be at least 1 (or None)")
        self.sensors = list(sensors)
        self.config = cfg = config or DetectorConfig()
        self.max_fits, self.max_wait_ms = max_fits, max_wait_ms
        self.fits = 0  # keys fitted so far (to watch the bound)
        # Slots with complete training, in order, with the time of their last training row.
        self._waiting: dict[int, float] = {}
        self._names = np.array(self.sensors, dtype=object)
        s = len(self.sensors)
        self._pa, self._pb = sensor_pairs(s)
        self._pair_names = np.array(
            [
                f"{self.sensors[i]}|{self.sensors[j]}"
                for i, j in zip(self._pa, self._pb, strict=True)
            ],
            dtype=object,
        )
        p = len(self._pa)
        width = 2 if cfg.model == "pca" else 1
        stride = max(1, -(-cfg.train_rows // cfg.model_max_rows))
        kept = min(-(-cfg.train_rows // stride), cfg.model_max_rows) if cfg.model == "knn" else s
        self._fields: dict[str, tuple[tuple[int, ...], object]] = {
            "fitted": ((), False),
            "last": ((s,), np.nan),
            "last_ts": ((), np.nan),
            "runs": ((s,), 0.0),
            "z_level": ((s,), 0.0),
            "ewma_level": ((s,), 0.0),
            "roc_level": ((s,), 0.0),
            "noise_level": ((s,), 0.0),
            "corr_level": ((p,), 0.0),
            "tail": ((max(cfg.model_window - 1, 0), width), 0.0),
            "median": ((s,), 0.0),
            "noise": ((s,), 1.0),
            "dx2_mean": ((s,), 1.0),
            "dx_p99": ((s,), 1.0),
            "stuck_after": ((s,), np.inf),
            "watched": ((s,), False),
            "low": ((s,), -np.inf),
            "high": ((s,), np.inf),
            "mean": ((s,), 0.0),
            "std": ((s,), 1.0),
            "dt_median": ((), 0.0),
            "pair_watch": ((p,), False),
            "pair_slope": ((p,), 0.0),
            "pair_resid": ((p,), 1.0),
            "m_mean": ((s,), 0.0),
            "m_std": ((s,), 1.0),
            "m_train": ((kept, s), 0.0),
            "m_eig": ((s,), 1.0),
            "m_thr": ((width,), np.inf),
        }
        self._a: dict[str, np.ndarray] = {}
        self._flat: np.ndarray
        self.slots: dict[str, int] = {}
        self._seen: list[int] = []
        self._train_x: list[list[np.ndarray]] = []
        self._train_ts: list[list[np.ndarray]] = []
        self._grow(16)
        low = [cfg.limits.get(x, _NO_LIMIT).low for x in self.sensors]
        self._low = np.array(low, dtype=np.float64)
        self._high = np.array([cfg.limits.get(x, _NO_LIMIT).high for x in self.sensors])

    # -- slots ---------------------------------------------------------------------

    def _grow(self, capacity: int) -> None:
        # Every field is a view into one (keys x values) float matrix, so one key's
        # whole state is one contiguous row: a snapshot is that row's bytes.
        widths = [int(np.prod(shape)) for shape, _ in self._fields.values()]
        flat = np.zeros((capacity, sum(widths)))
        old = getattr(self, "_flat", None)
        fresh = slice(0 if old is None else len(old), capacity)
        if old is not None:
            flat[: len(old)] = old
        self._flat = flat
        offset = 0
        for (name, (shape, fill)), width in zip(self._fields.items(), widths, strict=True):
            view = flat[:, offset : offset + width].reshape(capacity, *shape)
            view[fresh] = float(fill)  # type: ignore[arg-type]
            self._a[name] = view
            offset += width

    def _slot(self, key: str) -> int:
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = len(self.slots)
            self._seen.append(0)
            self._train_x.append([])
            self._train_ts.append([])
            if slot >= len(self._a["fitted"]):
                self._grow(2 * len(self._a["fitted"]))
        return slot

    def snapshot(self, key: str) -> bytes:
        """One key's state as bytes (for a changelog); empty if the key is unknown.

        A key still collecting its training rows snapshots as untrained: after a
        restore it starts its training again (a few seconds of readings) rather than
        every batch writing its growing training buffer to the changelog.
        """
        slot = self.slots.get(key)
        if slot is None or not self._a["fitted"][slot]:
            return b""
        return self._flat[slot].tobytes()

    def restore(self, key: str, blob: bytes) -> None:
        """Put back a key's state taken by :meth:`snapshot` (replacing what is there)."""
        slot = self._slot(key)
        self._train_x[slot], self._train_ts[slot] = [], []
        self._waiting.pop(slot, None)
        if not blob:
            self._seen[slot] = 0
            for name, (_, fill) in self._fields.items():
                self._a[name][slot] = fill
            return
        row = np.frombuffer(blob, dtype=np.float64)
        if row.shape != self._flat[slot].shape:
            raise ValueError(
                f"state of {key!r} has {row.size} values, this bank keeps {self._flat.shape[1]}"
            )
        self._flat[slot] = row
        self._seen[slot] = self.config.train_rows

    def latest(self, key: str) -> float:
        """The latest event time seen for ``key`` (NaN if none)."""
        slot = self.slots.get(key)
        return float("nan") if slot is None else float(self._a["last_ts"][slot])

    # -- a batch -------------------------------------------------------------------

    def process(
        self, keys: np.ndarray, ts: np.ndarray, x: np.ndarray
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """Score one batch; each key's rows are taken in event-time order.

        Returns the alerts (:data:`ALERT_SCHEMA`) and, per input row, whether any
        detector fired on it.
        """
        x = np.asarray(x, dtype=np.float64)
        ts = np.asarray(ts, dtype=np.int64)
        n = len(x)
        flagged = np.zeros(n, dtype=bool)
        if n == 0:
            return ALERT_SCHEMA.to_frame(), flagged
        # One Polars pass maps keys to codes; slots are then looked up per distinct key.
        codes = pl.Series(keys, dtype=pl.String).rank("dense").to_numpy().astype(np.int64) - 1
        first = np.unique(codes, return_index=True)[1]
        unique = [str(keys[i]) for i in first]
        slot_of = {k: self._slot(k) for k in unique}
        slots = np.array([slot_of[k] for k in unique], dtype=np.int64)[codes]
        order = np.lexsort((ts, slots))
        hits = _Hits()
        self._stateless(hits, order, slots, ts, x)
        scoring = self._train(order, slots, ts, x)
        if len(scoring):
            self._score(hits, scoring, slots, ts, x)
        last = np.flatnonzero(np.r_[slots[order][1:] != slots[order][:-1], True])
        self._a["last_ts"][slots[order][last]] = np.maximum(
            np.nan_to_num(self._a["last_ts"][slots[order][last]], nan=-np.inf), ts[order][last]
        )
        if not hits.rows:
            return ALERT_SCHEMA.to_frame(), flagged
        rows = np.concatenate(hits.rows)
        flagged[rows] = True
        by_time = np.argsort(ts[rows], kind="stable")
        rows = rows[by_time]
        names = np.array(unique, dtype=object)
        detectors = np.concatenate(hits.detectors)[by_time]
        alerts = pl.DataFrame(
            {
                "key": names[codes[rows]],
                "ts": ts[rows],
                "detector": detectors,
                "kind": np.vectorize(KINDS.__getitem__, otypes=[object])(detectors),
                "sensor": np.concatenate(hits.sensors)[by_time],
                "value": np.concatenate(hits.values)[by_time],
                "score": np.concatenate(hits.scores)[by_time],
            },
            schema_overrides={
                "key": pl.String,
                "detector": pl.String,
                "kind": pl.String,
                "sensor": pl.String,
            },
        )
        return with_reasons(alerts), flagged

    def _stateless(
        self, hits: _Hits, order: np.ndarray, slots: np.ndarray, ts: np.ndarray, x: np.ndarray
    ) -> None:
        """Limits and missing values need no history; time gaps need the previous row."""
        cfg = self.config
        if "limit" in cfg.detectors and cfg.limits:
            with np.errstate(invalid="ignore"):
                over = np.where(
                    x > self._high, (x - self._high) / np.maximum(np.abs(self._high), 1e-9), 0.0
                )
                under = np.where(
                    x < self._low, (self._low - x) / np.maximum(np.abs(self._low), 1e-9), 0.0
                )
                bad = (x > self._high) | (x < self._low)
            r, c = np.nonzero(bad)
            hits.add("limit", r, self._names[c], (1.0 + over + under)[r, c], x[r, c])
        if "missing" not in cfg.detectors:
            return
        nr, nc = np.nonzero(np.isnan(x))
        hits.add("missing", nr, self._names[nc], np.ones(len(nr)), x[nr, nc])
        s, t = slots[order], ts[order]
        first = np.r_[True, s[1:] != s[:-1]]
        prev = np.where(first, self._a["last_ts"][s], np.r_[t[:1], t[:-1]].astype(np.float64))
        usual = self._a["dt_median"][s]
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = (t - prev) / np.maximum(_GAP_FACTOR * usual, cfg.min_gap_ms)
        gaps = np.flatnonzero((usual > 0) & (gap > 1.0) & (self._a["fitted"][s] > 0))
        hits.add(
            "missing",
            order[gaps],
            np.full(len(gaps), "*", dtype=object),
            gap[gaps],
            np.full(len(gaps), np.nan),
        )

    def _train(
        self, order: np.ndarray, slots: np.ndarray, ts: np.ndarray, x: np.ndarray
    ) -> np.ndarray:
        """Feed untrained keys their training rows, fit at most ``max_fits`` of those
        that are complete; returns the rows left to score, in order."""
        s = slots[order]
        fitted = self._a["fitted"][s] > 0
        if fitted.all():
            return order
        keep = np.ones(len(order), dtype=bool)
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        ends = np.r_[starts[1:], len(s)]
        segments = []
        train_rows = self.config.train_rows
        for lo, hi in zip(starts, ends, strict=True):
            slot = int(s[lo])
            if self._a["fitted"][slot]:
                continue
            take = min(max(train_rows - self._seen[slot], 0), hi - lo)
            segments.append((slot, lo + take, hi))
            if take:
                rows = order[lo : lo + take]
                self._train_x[slot].append(x[rows])
                self._train_ts[slot].append(ts[rows])
                self._seen[slot] += take
                keep[lo : lo + take] = False
                if self._seen[slot] >= train_rows:
                    self._waiting[slot] = float(ts[rows[-1]])
        budget = len(self._waiting) if self.max_fits is None else self.max_fits
        now = list(self._waiting)[:budget]
        if self.max_wait_ms is not None:
            chosen = set(now)
            for slot, lo, hi in segments:
                waited = float(ts[order[hi - 1]]) - self._waiting.get(slot, np.inf)
                if hi > lo and slot not in chosen and waited >= self.max_wait_ms:
                    now.append(slot)
                    chosen.add(slot)
        for slot in now:
            del self._waiting[slot]
            self._fit(slot)
        # Keys still waiting keep the rest of their rows for their levels at the fit.
        for slot, lo, hi in segments:
            if slot in self._waiting and hi > lo:
                rows = order[lo:hi]
                self._train_x[slot].append(x[rows])
                self._train_ts[slot].append(ts[rows])
                self._seen[slot] += hi - lo
                keep[lo:hi] = False
        return order[keep]

    def _fit(self, slot: int) -> None:
        cfg = self.config
        held, tts = np.vstack(self._train_x[slot]), np.concatenate(self._train_ts[slot])
        self._train_x[slot], self._train_ts[slot] = [], []
        self._seen[slot] = cfg.train_rows
        self.fits += 1
        # The baseline learns from the first train_rows; rows held while the key waited
        # for its fit only carry the smoothed levels forward to now.
        tx = held[: cfg.train_rows]
        base = fit_baseline(tx, tts[: cfg.train_rows], cfg)
        a = self._a
        for name in (
            "median",
            "noise",
            "dx2_mean",
            "dx_p99",
            "stuck_after",
            "watched",
            "low",
            "high",
            "mean",
            "std",
        ):
            a[name][slot] = getattr(base, name)
        a["dt_median"][slot] = base.dt_median_ms
        a["pair_watch"][slot] = base.pairs
        a["pair_slope"][slot], a["pair_resid"][slot] = base.pair_fit[:, 0], base.pair_fit[:, 1]
        filled = ffill(held[None], np.full((1, held.shape[1]), np.nan))[0]
        filled = np.where(np.isnan(filled), base.median, filled)
        # The smoothed levels start where the training rows leave them, as if the
        # detectors had been running all along.
        a["last"][slot] = filled[-1]
        a["last_ts"][slot] = tts[-1]
        # The last rows suffice: an EWMA with alpha >= 0.05 forgets 512 rows back to
        # 1e-11, and the fits of all machines often land in the same batch.
        recent = filled[-_LEVEL_ROWS:]
        a["runs"][slot] = 0.0
        a["z_level"][slot] = ewm(recent[None], cfg.z_alpha, recent[:1])[0, -1]
        a["ewma_level"][slot] = ewm(recent[None], cfg.ewma_alpha, base.median[None])[0, -1]
        dx = np.diff(recent, axis=0)[None]
        a["roc_level"][slot] = ewm(np.abs(dx), cfg.roc_alpha, np.zeros((1, tx.shape[1])))[0, -1]
        a["noise_level"][slot] = ewm(dx**2, cfg.noise_alpha, base.dx2_mean[None])[0, -1]
        a["corr_level"][slot] = 0.0
        model = base.model
        if model is not None:
            a["m_mean"][slot], a["m_std"][slot] = model.mean, model.std
            a["m_train"][slot], a["m_eig"][slot][: len(model.eigenvalues)] = (
                model.train,
                model.eigenvalues,
            )
            a["m_thr"][slot] = model.threshold
            keep = a["tail"].shape[1]
            if keep:
                z = (filled[-keep:] - model.mean) / model.std
                a["tail"][slot] = model_scores(
                    model.kind,
                    z[None],
                    model.train[None],
                    a["m_eig"][slot][None],
                    cfg.knn_neighbors,
                )[0]
        a["fitted"][slot] = True

    def _score(
        self, hits: _Hits, rows: np.ndarray, slots: np.ndarray, ts: np.ndarray, x: np.ndarray
    ) -> None:
        """Run the stateful detectors on the rows of trained keys, all keys at once."""
        cfg, a = self.config, self._a
        s = slots[rows]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        lengths = np.diff(np.r_[starts, len(s)])
        keyed = s[starts]  # slot of each layout row
        ki = np.repeat(np.arange(len(starts)), lengths)
        li = np.arange(len(s)) - np.repeat(starts, lengths)
        shape = (len(starts), int(lengths.max()), len(self.sensors))
        raw = np.full(shape, np.nan)
        raw[ki, li] = x[rows]
        valid = np.zeros(shape[:2], dtype=bool)
        valid[ki, li] = True
        where = np.full(shape[:2], -1, dtype=np.int64)
        where[ki, li] = rows
        end = lengths - 1
        last = a["last"][keyed]
        filled = ffill(raw, last)
        filled = np.where(np.isnan(filled), a["median"][keyed][:, None], filled)
        prev = np.concatenate([last[:, None], filled[:, :-1]], axis=1)
        raw_prev = np.concatenate([last[:, None], raw[:, :-1]], axis=1)
        on = cfg.detectors

        def cells(detector: str, mask: np.ndarray, score: np.ndarray) -> None:
            k, r, c = np.nonzero(mask & valid[:, :, None])
            hits.add(detector, where[k, r], self._names[c], score[k, r, c], raw[k, r, c])

        if "zscore" in on:
            level = ewm(filled, cfg.z_alpha, a["z_level"][keyed])
            before = np.concatenate([a["z_level"][keyed][:, None], level[:, :-1]], axis=1)
            z = np.abs(filled - before) / a["noise"][keyed][:, None] / cfg.z_threshold
            cells("zscore", z > 1.0, z)
            a["z_level"][keyed] = at(level, end)
        if "ewma" in on:
            # Outside the training envelope: machines idle and run, so the envelope
            # (not the median) is what normal looks like for one sensor on its own.
            level = ewm(filled, cfg.ewma_alpha, a["ewma_level"][keyed])
            out_by = np.maximum(level - a["high"][keyed][:, None], a["low"][keyed][:, None] - level)
            z = np.maximum(out_by, 0.0) / (cfg.ewma_threshold * a["noise"][keyed][:, None])
            cells("ewma", z > 1.0, z)
            a["ewma_level"][keyed] = at(level, end)
        dx = filled - prev
        if "roc" in on:
            level = ewm(np.abs(dx), cfg.roc_alpha, a["roc_level"][keyed])
            r = level / (cfg.roc_factor * a["dx_p99"][keyed][:, None])
            cells("roc", r > 1.0, r)
            a["roc_level"][keyed] = at(level, end)
        if "noise" in on:
            level = ewm(dx**2, cfg.noise_alpha, a["noise_level"][keyed])
            r = level / (cfg.noise_factor * a["dx2_mean"][keyed][:, None])
            cells("noise", r > 1.0, r)
            a["noise_level"][keyed] = at(level, end)
        if "stuck" in on:
            equal = (raw == raw_prev) & ~np.isnan(raw)
            runs = run_lengths(equal, a["runs"][keyed])
            r = (runs + 1) / a["stuck_after"][keyed][:, None]
            cells("stuck", (r >= 1.0) & (a["watched"][keyed][:, None] > 0), r)
            a["runs"][keyed] = at(runs, end)
        if "correlation" in on and len(self._pa):
            self._correlation(hits, keyed, filled, raw, valid, where, end)
        if "learned" in on and cfg.model != "none":
            self._model(hits, keyed, filled, raw, valid, where, end)
        a["last"][keyed] = at(filled, end)

    def _correlation(
        self,
        hits: _Hits,
        keyed: np.ndarray,
        x: np.ndarray,
        raw: np.ndarray,
        valid: np.ndarray,
        where: np.ndarray,
        end: np.ndarray,
    ) -> None:
        a, pa, pb = self._a, self._pa, self._pb
        z = (x - a["mean"][keyed][:, None]) / a["std"][keyed][:, None]
        resid = (z[:, :, pb] - a["pair_slope"][keyed][:, None] * z[:, :, pa]) / a["pair_resid"][
            keyed
        ][:, None]
        level = ewm(resid, self.config.corr_alpha, a["corr_level"][keyed])
        a["corr_level"][keyed] = at(level, end)
        score = np.abs(level) / self.config.corr_threshold
        mask = (score > 1.0) & (a["pair_watch"][keyed][:, None] > 0) & valid[:, :, None]
        k, r, c = np.nonzero(mask)
        hits.add("correlation", where[k, r], self._pair_names[c], score[k, r, c], raw[k, r, pb[c]])

    def _model(
        self,
        hits: _Hits,
        keyed: np.ndarray,
        x: np.ndarray,
        raw: np.ndarray,
        valid: np.ndarray,
        where: np.ndarray,
        end: np.ndarray,
    ) -> None:
        cfg, a = self.config, self._a
        z = (x - a["m_mean"][keyed][:, None]) / a["m_std"][keyed][:, None]
        scores = model_scores(
            cfg.model, z, a["m_train"][keyed], a["m_eig"][keyed], cfg.knn_neighbors
        )
        tail = a["tail"][keyed]
        smooth = rolling_mean(scores, tail, cfg.model_window)
        keep = tail.shape[1]
        if keep:
            full = np.concatenate([tail, scores], axis=1)
            idx = (end + 1)[:, None] + np.arange(keep)[None, :]
            a["tail"][keyed] = np.take_along_axis(full, idx[:, :, None], axis=1)
        ratio = (smooth / a["m_thr"][keyed][:, None]).max(axis=2)
        k, r = np.nonzero((ratio > 1.0) & valid)
        # Blame the sensor furthest from its training mean, in training deviations.
        worst = np.abs(z[k, r]).argmax(axis=1) if len(k) else np.zeros(0, dtype=np.int64)
        hits.add("learned", where[k, r], self._names[worst], ratio[k, r], raw[k, r, worst])
