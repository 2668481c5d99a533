"""Labelled transaction history written to the lake for the batch layer and training."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from haeryu.usecases.fraud.profiles import HISTORY_TABLE
from haeryu.usecases.fraud.simulator import DAY_MS, generate
from haeryu.usecases.fraud.world import World

#: Days generated and committed together (one Delta commit each).
CHUNK_DAYS = 10


def lake_root(lake: Path | str | None = None) -> Path:
    """``lake``, else ``$HAERYU_LAKE``, else ``./lake`` (where ``haeryu query`` looks)."""
    return Path(lake) if lake is not None else Path(os.environ.get("HAERYU_LAKE", "lake"))


def to_lake_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """Transactions with the lake's event-time columns (``event_time``, ``event_date``)."""
    event = pl.from_epoch("ts", time_unit="ms").dt.replace_time_zone("UTC")
    return frame.with_columns(
        event_time=event.cast(pl.Datetime("us", "UTC")), event_date=event.dt.date()
    )


def write_history(
    world: World,
    *,
    days: int,
    end_ms: int,
    seed: int = 0,
    lake: Path | str | None = None,
    table: str = HISTORY_TABLE,
    fraud_share: float = 0.003,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, int]:
    """Generate ``days`` of history ending at ``end_ms`` into the lake; returns (path, rows).

    Each chunk of :data:`CHUNK_DAYS` days is one Delta commit, partitioned by
    ``event_date``.  An existing table is replaced, so a rerun with the same seed gives
    the same table.
    """
    from deltalake import write_deltalake

    if days < 1:
        raise ValueError(f"--history must be at least one day, got {days}")
    path = lake_root(lake) / table
    path.parent.mkdir(parents=True, exist_ok=True)
    start = end_ms - days * DAY_MS
    rows = 0
    for first in range(0, days, CHUNK_DAYS):
        lo = start + first * DAY_MS
        hi = min(end_ms, lo + CHUNK_DAYS * DAY_MS)
        chunk = generate(world, lo, hi, seed=seed, fraud_share=fraud_share, id_prefix=f"h{first}-")
        data = to_lake_rows(chunk).to_arrow()
        if first == 0:
            write_deltalake(
                str(path),
                data,
                mode="overwrite",
                partition_by=["event_date"],
                schema_mode="overwrite",
            )
        else:
            write_deltalake(str(path), data, mode="append", partition_by=["event_date"])
        frame = chunk
        rows += frame.height
        if progress is not None:
            progress(min(days, first + CHUNK_DAYS), days)
    return path, rows


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000
