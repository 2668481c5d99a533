"""Rows as the table stores them: columns Delta readers accept and partition columns."""

from __future__ import annotations

import polars as pl

from haeryu.stream.sinks import SinkError

EVENT_DATE = "event_date"
"""Partition column: the UTC date of the event time."""
EVENT_HOUR = "event_hour"
"""Partition column: the UTC hour (0-23) of the event time."""

_LEFT_OUT = ("_headers",)


def event_time(frame: pl.DataFrame, time_column: str | None) -> pl.Expr:
    """The event time as a UTC datetime expression."""
    name = time_column
    if name is None:
        name = next((c for c in ("_event_time", "_timestamp") if c in frame.columns), None)
    if name is None or name not in frame.columns:
        raise SinkError(
            f"cannot partition by event time: no column {time_column or '_event_time'} "
            f"in {frame.columns}; pass time_column= or partition_by=None"
        )
    dtype = frame.schema[name]
    column = pl.col(name)
    if dtype.is_integer():
        return pl.from_epoch(column, time_unit="ms").dt.replace_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        return column if dtype.time_zone else column.dt.replace_time_zone("UTC")
    raise SinkError(f"event time column {name} is {dtype}, not epoch ms or a datetime")


def to_table_frame(
    frame: pl.DataFrame, partition_columns: list[str], time_column: str | None
) -> pl.DataFrame:
    """Internal columns left out, timestamps in microseconds, partition columns added."""
    keep = [c for c in frame.columns if not c.startswith("__") and c not in _LEFT_OUT]
    frame = frame.select(keep)
    casts = {
        name: pl.Datetime("us", dtype.time_zone)
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_unit != "us"
    }
    if casts:
        frame = frame.cast(casts)  # type: ignore[arg-type]
    if EVENT_DATE in partition_columns or EVENT_HOUR in partition_columns:
        at = event_time(frame, time_column)
        frame = frame.with_columns(
            at.dt.date().alias(EVENT_DATE), at.dt.hour().cast(pl.Int32).alias(EVENT_HOUR)
        )
        if EVENT_HOUR not in partition_columns:
            frame = frame.drop(EVENT_HOUR)
    missing = [c for c in partition_columns if c not in frame.columns]
    if missing:
        raise SinkError(f"partition columns {missing} are not in the rows ({frame.columns})")
    return frame


def conform(
    frame: pl.DataFrame, schema: dict[str, pl.DataType]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cast ``frame`` to the table's column types; rows that do not fit are split off.

    Returns the rows that fit (new columns kept: the table gains them as nullable
    columns) and the rows that do not, with an ``error`` column saying which column and
    which type.  A value fits when it casts to the table's type and back unchanged, so
    ``1.5`` does not become ``1`` in an integer column.
    """
    bad = pl.lit(None, pl.String)
    casts: dict[str, pl.Expr] = {}
    for name, dtype in frame.schema.items():
        want = schema.get(name)
        if want is None or want == dtype:
            continue
        column = pl.col(name)
        cast = column.cast(want, strict=False)
        try:
            castable = frame.head(1).select(cast).dtypes[0] == want
        except Exception:
            castable = False
        if not castable:  # no cast between these types (a struct stays a struct)
            cast = pl.lit(None, want)
            fits = column.is_null()
        elif want.is_numeric() and dtype.is_numeric():
            # 5.5 casts to 5: a value fits only if it casts back unchanged
            fits = column.is_null() | (cast.is_not_null() & (cast.cast(dtype) == column))
        else:
            fits = column.is_null() | cast.is_not_null()
        reason = pl.format(
            "column '{}' is {} in the table; this value is {}: {}",
            pl.lit(name),
            pl.lit(str(want)),
            pl.lit(str(dtype)),
            column.cast(pl.String, strict=False).fill_null("(not printable)"),
        )
        bad = pl.when(bad.is_null() & ~fits).then(reason).otherwise(bad)
        casts[name] = cast
    if not casts:
        return frame, frame.head(0).with_columns(pl.lit(None, pl.String).alias("error"))
    marked = frame.with_columns(bad.alias("__error"))
    good = marked.filter(pl.col("__error").is_null()).drop("__error")
    dead = marked.filter(pl.col("__error").is_not_null()).rename({"__error": "error"})
    return good.with_columns(**casts), dead
