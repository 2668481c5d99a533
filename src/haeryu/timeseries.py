"""Rollups: per-key count, min, max, mean and last over 1 s and 1 min windows.

A dashboard that shows minutes or hours of a sensor reads a few rollup rows per key
instead of every raw reading.  :func:`rollups` adds the windows to a pipeline; the rows
go to the sinks (for example the lake's Delta sink) or topics the caller names.
See docs/warehouse.md, "Rollups".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from haeryu.stores.lake import DeltaSink
from haeryu.stream import Aggregated, PlanError, Sink, Stream, windows

DEFAULT_RESOLUTIONS: tuple[str, ...] = ("1s", "1m")
STATISTICS: tuple[str, ...] = ("count", "min", "max", "mean", "last")


def rollup_aggregates(values: Sequence[str]) -> dict[str, pl.Expr]:
    """count, min, max, mean and last of each value column.

    With one value column the outputs are named ``count``, ``min``, ... ; with several,
    ``<column>_count``, ``<column>_min``, ...
    """
    out: dict[str, pl.Expr] = {}
    for value in values:
        c = pl.col(value)
        prefix = "" if len(values) == 1 else f"{value}_"
        out[f"{prefix}count"] = c.count()
        out[f"{prefix}min"] = c.min()
        out[f"{prefix}max"] = c.max()
        out[f"{prefix}mean"] = c.mean()
        out[f"{prefix}last"] = c.last()
    return out


def rollups(
    stream: Stream,
    *,
    key: str | Sequence[str],
    value: str | Sequence[str],
    resolutions: Sequence[str] = DEFAULT_RESOLUTIONS,
    sinks: Mapping[str, Sink] | None = None,
    topics: Mapping[str, str] | None = None,
    allowed_lateness: str = "0s",
    emit: str = "close",
    lake: str | None = None,
    lake_root: str | Path | None = None,
) -> dict[str, Aggregated]:
    """Maintain per-key rollups of ``stream`` at each resolution (tumbling windows).

    Each result row holds the key columns, ``window_start``, ``window_end`` and, per
    value column, count (non-null values), min, max, mean and last (by event time).
    ``sinks`` and ``topics`` map a resolution (``"1s"``, ``"1m"``) to where its rows go;
    the returned streams can be used further (``.late()`` for readings that came too
    late for their window).

    ``lake="readings"`` also writes each resolution to the lake's Delta table
    ``readings_<resolution>`` (``readings_1s``, ``readings_1m``) under ``lake_root``
    (default ``$HAERYU_LAKE``, else ``lake``), partitioned by the date of
    ``window_start``, where ``haeryu query`` and dashboards read it.

    >>> rollups(readings, key="sensor", value="temperature",      # doctest: +SKIP
    ...         sinks={"1s": lake_sink_1s, "1m": lake_sink_1m})
    """
    keys = (key,) if isinstance(key, str) else tuple(key)
    values = (value,) if isinstance(value, str) else tuple(value)
    if not keys or not values:
        raise PlanError("rollups need at least one key column and one value column")
    targets = {**(sinks or {}), **(topics or {})}
    unknown = sorted(set(targets) - set(resolutions))
    if unknown:
        raise PlanError(
            f"rollups: no resolution {', '.join(unknown)} (the resolutions are"
            f" {', '.join(resolutions)})"
        )
    keyed = stream.key_by(*keys)
    out: dict[str, Aggregated] = {}
    for resolution in resolutions:
        aggregated = keyed.window(
            windows.tumbling(resolution),
            allowed_lateness=allowed_lateness,
            emit=emit,  # type: ignore[arg-type]  # checked by window()
        ).agg(**rollup_aggregates(values))
        if sinks and resolution in sinks:
            aggregated.to_sink(sinks[resolution])
        if lake is not None:
            aggregated.to_sink(
                DeltaSink(f"{lake}_{resolution}", root=lake_root, time_column="window_start")
            )
        if topics and resolution in topics:
            aggregated.to_topic(topics[resolution])
        out[resolution] = aggregated
    return out
