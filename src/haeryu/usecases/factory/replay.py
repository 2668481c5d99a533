"""``haeryu detect replay``: run the detectors over recorded readings, as the stream would.

The file (CSV or Parquet) holds a timestamp, optional key columns, numeric sensor
columns and optionally a 0/1 label.  Rows go through the :class:`DetectorBank` in event
time order, in chunks, so the result is what the live pipeline would have raised.  Per
key, the first ``train_rows`` rows train the detectors and the rest is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from haeryu.usecases.factory.config import DetectorConfig
from haeryu.usecases.factory.detectors import ALERT_SCHEMA, DetectorBank
from haeryu.usecases.factory.metrics import (
    PointMetrics,
    label_episodes,
    point_delays,
    point_metrics,
    quantile_or_none,
)

_CHUNK_ROWS = 20_000


class ReplayError(ValueError):
    """The recorded file cannot be replayed as asked (the message says why and what to do)."""


@dataclass
class ReplayResult:
    """Alerts of a replay and, with labels, the point-wise metrics of the scored rows."""

    alerts: pl.DataFrame
    rows: int
    scored_rows: int
    sensors: list[str]
    metrics: PointMetrics | None = None
    delays_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def summary(self) -> dict[str, object]:
        """The JSON object ``--json`` prints last."""
        out: dict[str, object] = {
            "rows": self.rows,
            "scored_rows": self.scored_rows,
            "alerts": self.alerts.height,
            "sensors": self.sensors,
        }
        if self.metrics is not None:
            out.update(self.metrics.as_dict())
            out["episodes"] = int(self.delays_s.size)
            out["episodes_detected"] = int(np.isfinite(self.delays_s).sum())
            out["delay_p50_s"] = quantile_or_none(self.delays_s, 0.5)
            out["delay_p95_s"] = quantile_or_none(self.delays_s, 0.95)
        return out


def read_readings(path: Path, sep: str) -> pl.DataFrame:
    """Read a CSV (``sep``-separated) or Parquet file of readings."""
    if not path.exists():
        raise ReplayError(f"{path}: no such file")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pl.read_parquet(path)
    try:
        return pl.read_csv(path, separator=sep, infer_schema_length=10_000)
    except pl.exceptions.PolarsError as e:
        raise ReplayError(f"{path}: not a readable CSV with separator {sep!r}: {e}") from e


def _epoch_ms(column: pl.Series, name: str) -> np.ndarray:
    if column.dtype == pl.String:
        parsed = column.str.to_datetime(strict=False, time_unit="ms")
        if parsed.null_count() > column.null_count():
            bad = column.filter(parsed.is_null() & column.is_not_null())[0]
            raise ReplayError(f"time column {name!r}: {bad!r} is not a date-time")
        column = parsed
    if column.dtype.is_temporal():
        return column.cast(pl.Datetime("ms")).dt.epoch("ms").to_numpy()
    if column.dtype.is_numeric():
        return column.cast(pl.Int64).to_numpy()
    raise ReplayError(f"time column {name!r} has type {column.dtype}: give a date-time or epoch ms")


def replay_frame(
    frame: pl.DataFrame,
    *,
    time_col: str = "ts",
    key_cols: Sequence[str] = (),
    label_col: str | None = None,
    ignore_cols: Sequence[str] = (),
    config: DetectorConfig | None = None,
    key_prefix: str = "",
) -> ReplayResult:
    """Replay one frame of readings (see the module doc)."""
    config = config or DetectorConfig()
    missing = [
        c
        for c in (time_col, *key_cols, *([label_col] if label_col else []))
        if c not in frame.columns
    ]
    if missing:
        raise ReplayError(f"column(s) {missing} not in the file; it has {frame.columns}")
    skip = {time_col, *key_cols, *ignore_cols, *([label_col] if label_col else [])}
    sensors = [c for c, t in frame.schema.items() if c not in skip and t.is_numeric()]
    if not sensors:
        raise ReplayError(f"no numeric sensor columns left in {frame.columns}")
    ts = _epoch_ms(frame[time_col], time_col)
    if key_cols:
        key_series = frame.select(
            pl.concat_str([pl.col(c).cast(pl.String) for c in key_cols], separator="/")
        ).to_series()
    else:
        key_series = pl.Series(["all"] * frame.height)
    keys = (key_prefix + key_series if key_prefix else key_series).to_numpy()
    order = np.lexsort((ts,))  # time order; ties keep file order
    ts, keys = ts[order], keys[order]
    x = frame.select(pl.col(sensors).cast(pl.Float64)).to_numpy()[order]
    bank = DetectorBank(sensors, config)
    alerts: list[pl.DataFrame] = []
    flagged = np.zeros(len(ts), dtype=bool)
    for start in range(0, len(ts), _CHUNK_ROWS):
        part = slice(start, start + _CHUNK_ROWS)
        a, f = bank.process(keys[part], ts[part], x[part])
        alerts.append(a)
        flagged[part] = f
    # Per key, the training rows are not scored.
    rank = pl.DataFrame({"k": keys}).select(pl.int_range(pl.len()).over("k")).to_series().to_numpy()
    scored = rank >= config.train_rows
    result = ReplayResult(
        alerts=pl.concat(alerts) if alerts else ALERT_SCHEMA.to_frame(),
        rows=len(ts),
        scored_rows=int(scored.sum()),
        sensors=sensors,
    )
    if label_col:
        raw = frame[label_col].to_numpy()[order]
        if not np.isin(raw[~np.isnan(raw.astype(float))], (0, 1)).all():
            raise ReplayError(f"label column {label_col!r} must hold 0 or 1")
        label = np.nan_to_num(raw.astype(float)) > 0
        result.metrics = point_metrics(flagged[scored], label[scored])
        episodes = label_episodes(keys[scored], ts[scored], label[scored])
        result.delays_s = point_delays(episodes, keys[scored], ts[scored], flagged[scored])
    return result


def replay_files(
    paths: Sequence[Path],
    *,
    sep: str = ",",
    time_col: str = "ts",
    key_cols: Sequence[str] = (),
    label_col: str | None = None,
    ignore_cols: Sequence[str] = (),
    config: DetectorConfig | None = None,
) -> ReplayResult:
    """Replay several files, each on its own (its keys start fresh); metrics are summed."""
    results = []
    for path in paths:
        frame = read_readings(path, sep)
        prefix = f"{path}:" if len(paths) > 1 else ""
        results.append(
            replay_frame(
                frame,
                time_col=time_col,
                key_cols=key_cols,
                label_col=label_col,
                ignore_cols=ignore_cols,
                config=config,
                key_prefix=prefix,
            )
        )
    return merge_results(results)


def merge_results(results: Sequence[ReplayResult]) -> ReplayResult:
    """One result for many replays: alerts concatenated, counts summed."""
    if not results:
        raise ReplayError("nothing to replay: no files given")
    metrics = [r.metrics for r in results if r.metrics is not None]
    total = None
    if metrics:
        total = metrics[0]
        for m in metrics[1:]:
            total = total + m
    return ReplayResult(
        alerts=pl.concat([r.alerts for r in results]),
        rows=sum(r.rows for r in results),
        scored_rows=sum(r.scored_rows for r in results),
        sensors=results[0].sensors,
        metrics=total,
        delays_s=np.concatenate([r.delays_s for r in results]),
    )


def write_alerts(alerts: pl.DataFrame, path: Path, time_col: str) -> None:
    """Alerts to CSV or Parquet by the file's extension, the time under ``time_col``."""
    out = alerts.with_columns(pl.from_epoch("ts", time_unit="ms").cast(pl.Datetime("ms"))).rename(
        {"ts": time_col}
    )
    if path.suffix.lower() in (".parquet", ".pq"):
        out.write_parquet(path)
    elif path.suffix.lower() == ".csv":
        out.write_csv(path)
    else:
        raise ReplayError(f"--alerts-out {path}: use a .csv or .parquet file name")
