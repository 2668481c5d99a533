"""Line-protocol rendering: escaping, field types, timestamps, rows without fields."""

from __future__ import annotations

import polars as pl
import pytest

from haeryu.connectors.influx import to_lines
from haeryu.stream.sinks import PlanError


def lines(frame: pl.DataFrame, **kw: object) -> list[str | None]:
    args: dict[str, object] = {"measurement": "m", "tags": (), "time": "t", **kw}
    return to_lines(frame, **args).to_list()  # type: ignore[arg-type]


def test_tags_and_field_keys_escape_comma_equals_space_and_backslash() -> None:
    frame = pl.DataFrame({"t": [5], "host name": ["a b,c=d\\e"], "f=x": [1.5]})
    got = lines(frame, measurement="cpu load,1", tags=["host name"], fields=["f=x"])
    assert got == ["cpu\\ load\\,1,host\\ name=a\\ b\\,c\\=d\\\\e f\\=x=1.5 5000000"]


def test_string_fields_escape_quotes_and_backslashes_only() -> None:
    frame = pl.DataFrame({"t": [0], "s": ['say "hi", a=b \\']})
    assert lines(frame, fields=["s"]) == ['m s="say \\"hi\\", a=b \\\\" 0']


def test_field_types_and_nulls() -> None:
    frame = pl.DataFrame(
        {
            "t": [1, 2],
            "i": [7, None],
            "u": pl.Series([3, 4], dtype=pl.UInt8),
            "f": [float("nan"), 2.5],
            "b": [None, False],
        }
    )
    # null and NaN values are left out of the point, not written as 0 or "NaN"
    assert lines(frame, fields=["i", "u", "f", "b"]) == [
        "m i=7i,u=3i 1000000",
        "m u=4i,f=2.5,b=false 2000000",
    ]


def test_empty_or_null_tags_are_left_out_and_tags_are_sorted() -> None:
    frame = pl.DataFrame({"t": [1, 2], "z": ["1", ""], "a": [None, "2"], "v": [1, 2]})
    assert lines(frame, tags=["z", "a"], fields=["v"]) == [
        "m,z=1 v=1i 1000000",
        "m,a=2 v=2i 2000000",
    ]


def test_datetime_time_column_becomes_nanoseconds() -> None:
    frame = pl.DataFrame(
        {"t": pl.Series([1_700_000_000_123_456], dtype=pl.Datetime("us", "UTC")), "v": [1]}
    )
    assert lines(frame, fields=["v"]) == ["m v=1i 1700000000123456000"]


def test_a_row_with_no_field_value_gives_null() -> None:
    frame = pl.DataFrame({"t": [1], "v": [None]}, schema={"t": pl.Int64, "v": pl.Float64})
    assert lines(frame, fields=["v"]) == [None]


def test_unmappable_field_type_is_a_plan_error() -> None:
    frame = pl.DataFrame({"t": [1], "l": [[1, 2]]})
    with pytest.raises(PlanError, match="field 'l' has type List"):
        lines(frame, fields=["l"])
