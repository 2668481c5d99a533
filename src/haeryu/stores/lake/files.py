"""Parquet data files written ahead of their Delta commit.

The sink writes each batch's data files as the batch arrives (in a background thread),
so a checkpoint only commits the log entry that adds them.  A file written but never
committed (a crash, a fenced writer) is referenced by no version: readers never see it
and ``vacuum`` deletes it after the retention period.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from deltalake.transaction import AddAction

Put = Callable[[str, memoryview], None]
"""Store ``data`` at a path relative to the table root."""

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_.-]+")
_NO_VALUE = "__HIVE_DEFAULT_PARTITION__"
# Delta readers compare string statistics by prefix; longer values get no min/max.
_STRING_STATS_LIMIT = 32


def local_put(root: str) -> Put:
    """Write files under the local directory ``root``."""

    def put(relative: str, data: memoryview) -> None:
        path = Path(root, relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "wb") as out:
                out.write(data)
        except BaseException:
            path.unlink(missing_ok=True)  # a partial file helps nobody (disk full)
            raise

    return put


def store_put(uri: str, storage_options: dict[str, str]) -> Put:
    """Write files through deltalake's object store (S3 and the like)."""
    # deltalake's own object store handle (typed in its stubs): the same configuration
    # (endpoint, keys, region, AWS_ALLOW_HTTP) as the commits that follow.
    from deltalake._internal import DeltaFileSystemHandler

    handler = DeltaFileSystemHandler(uri, storage_options or None)

    def put(relative: str, data: memoryview) -> None:
        stream = handler.open_output_stream(relative)
        try:
            stream.write(bytes(data))  # its stream takes bytes only
        finally:
            stream.close()  # type: ignore[attr-defined]  # completes the upload; missing in the stubs

    return put


def write_files(frame: pl.DataFrame, partition_columns: Sequence[str], put: Put) -> list[AddAction]:
    """Write ``frame`` as one Parquet file per table partition; the add actions for them."""
    if not frame.height:
        return []
    if not partition_columns:
        return [_write_one(frame, {}, put)]
    parts = frame.partition_by(list(partition_columns), as_dict=True, include_key=False)
    actions = []
    for key, part in parts.items():
        values = {c: _partition_value(v) for c, v in zip(partition_columns, key, strict=True)}
        actions.append(_write_one(part, values, put))
    return actions


def _write_one(frame: pl.DataFrame, values: dict[str, str | None], put: Put) -> AddAction:
    directory = ""
    for column, value in values.items():
        shown = _NO_VALUE if value is None else value
        if not _PLAIN_PATH.fullmatch(shown):
            break  # Delta finds partitions by the log's values, never by the path
        directory += f"{column}={shown}/"
    relative = f"{directory}part-{uuid.uuid4()}-c000.snappy.parquet"
    # Polars' writer uses dictionaries for strings only; pyarrow's default (for every
    # column) costs three times as much CPU here for files barely smaller.
    out = io.BytesIO()
    frame.write_parquet(out, compression="snappy", statistics=True)
    data = out.getbuffer()
    put(relative, data)
    return AddAction(
        relative, data.nbytes, values, int(time.time() * 1000), True, _statistics(frame)
    )


def _partition_value(value: Any) -> str | None:
    """A partition value as Delta writes it in the log."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _statistics(frame: pl.DataFrame) -> str:
    """Delta file statistics: row count, null counts, min and max where they are exact.

    Readers skip files by these, so a value is given only where its JSON form is exact:
    numbers (without NaN), dates and short strings.
    """
    nulls = {
        name: count for name, count in zip(frame.columns, frame.null_count().row(0), strict=False)
    }
    ranged = [
        name
        for name, dtype in frame.schema.items()
        if dtype.is_integer() or dtype.is_float() or dtype in (pl.Date, pl.String)
    ]
    minima: dict[str, Any] = {}
    maxima: dict[str, Any] = {}
    if ranged:
        row = frame.select(
            *[pl.col(n).min().alias(f"min{i}") for i, n in enumerate(ranged)],
            *[pl.col(n).max().alias(f"max{i}") for i, n in enumerate(ranged)],
        ).row(0)
        for i, name in enumerate(ranged):
            low, high = row[i], row[len(ranged) + i]
            if low is None or high is None:
                continue
            if isinstance(low, float) and (low != low or high != high):
                continue  # NaN: no ordering a reader could trust
            if isinstance(low, str) and (
                len(low) > _STRING_STATS_LIMIT or len(high) > _STRING_STATS_LIMIT
            ):
                continue
            if isinstance(low, float) and frame[name].is_nan().any():
                continue
            minima[name] = low.isoformat() if isinstance(low, dt.date) else low
            maxima[name] = high.isoformat() if isinstance(high, dt.date) else high
    return json.dumps(
        {"numRecords": frame.height, "minValues": minima, "maxValues": maxima, "nullCount": nulls}
    )


def remove_quietly(root: str, actions: Sequence[AddAction]) -> None:
    """Delete uncommitted local files (best effort; vacuum deletes what is left)."""
    if "://" in root:
        return
    for action in actions:
        with contextlib.suppress(OSError):
            os.unlink(Path(root, action.path))
