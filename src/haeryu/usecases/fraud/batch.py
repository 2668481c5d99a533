"""The batch layer: profiles from the lake with SQL, published to a compacted topic."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from haeryu.usecases.fraud.history import lake_root
from haeryu.usecases.fraud.profiles import HISTORY_TABLE, conform, profile_sql

log = logging.getLogger(__name__)


def compute_profiles(lake: Path | str | None = None, table: str = HISTORY_TABLE) -> pl.DataFrame:
    """Run the profile query in the warehouse (DuckDB over the lake's Delta tables)."""
    from haeryu.stores.warehouse import Warehouse

    warehouse = Warehouse(lake_root(lake))
    if table not in warehouse.tables():
        raise ValueError(
            f"no table {table!r} in the lake {lake_root(lake)}: "
            "write history first (haeryu simulate transactions --history 90d)"
        )
    return conform(warehouse.sql(profile_sql(table)))


def run_batch(
    bootstrap: str,
    topic: str,
    *,
    lake: Path | str | None = None,
    table: str = HISTORY_TABLE,
    every_s: float | None = None,
    stop: threading.Event | None = None,
    report: Callable[[int, float], None] | None = None,
) -> int:
    """Compute and publish the profiles once, or every ``every_s`` seconds until ``stop``."""
    from haeryu.usecases.fraud.live import publish_profiles

    stop = stop or threading.Event()
    runs = 0
    while True:
        started = time.perf_counter()
        profiles = compute_profiles(lake, table)
        n = publish_profiles(bootstrap, topic, profiles)
        runs += 1
        if report is not None:
            report(n, time.perf_counter() - started)
        if every_s is None or stop.wait(max(0.0, every_s - (time.perf_counter() - started))):
            return runs
