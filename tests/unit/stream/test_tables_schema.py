"""Tables from compacted topics, schemas from classes, durations from text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import polars as pl
import pydantic
import pytest

from haeryu.stream.durations import to_ms
from haeryu.stream.errors import PlanError, SchemaError
from haeryu.stream.formats import JsonFormat, RawBatch
from haeryu.stream.plan import TableSpec
from haeryu.stream.schema import columns_of
from haeryu.stream.tables import TableState


def table_batch(records: list[tuple[str, bytes | None]]) -> RawBatch:
    return RawBatch.of("machines", [v for _, v in records], keys=[k.encode() for k, _ in records])


def test_table_keeps_the_latest_value_and_honours_tombstones() -> None:
    table = TableState(TableSpec("machines", JsonFormat(), "machine_id"))
    table.apply(
        table_batch([("m1", b'{"line": "A"}'), ("m2", b'{"line": "B"}'), ("m1", b'{"line": "C"}')])
    )
    table.apply(
        table_batch(
            [("m2", None), ("m3", b'{"line": "D"}'), ("m3", None), ("m3", b'{"line": "E"}')]
        )
    )
    assert table.frame is not None
    assert sorted(table.frame.select("machine_id", "line").rows()) == [("m1", "C"), ("m3", "E")]
    stream = pl.DataFrame({"machine_id": ["m1", "m2", "m3"], "line": ["x", "y", "z"]})
    left = table.join(stream, "machine_id", "left", "info_")
    assert left.columns == ["machine_id", "line", "info_line"]
    assert left["info_line"].to_list() == ["C", None, "E"]
    inner = table.join(stream, "machine_id", "inner", "")
    assert inner["line_right"].to_list() == ["C", "E"]


def test_durations() -> None:
    assert to_ms("1h30m") == 5_400_000
    assert to_ms("1.5s") == 1500
    assert to_ms(250) == 250
    assert to_ms(dt.timedelta(minutes=1)) == 60_000
    for bad in ("10", "ten s", "", "-1s"):
        with pytest.raises(PlanError, match="500ms"):
            to_ms(bad)
    with pytest.raises(PlanError):
        to_ms(-5)


@dataclass
class Place:
    lat: float
    lon: float


@dataclass
class Reading:
    machine_id: str
    tags: list[str]
    at: dt.datetime
    place: Place | None = None


class Card(TypedDict):
    number: str
    amount: NotRequired[float]


class Model(pydantic.BaseModel):
    user: str
    score: float | None = None


def test_schemas_from_classes() -> None:
    reading = columns_of(Reading)
    assert reading.dtypes["tags"] == pl.List(pl.String)
    assert reading.dtypes["place"] == pl.Struct({"lat": pl.Float64, "lon": pl.Float64})
    assert reading.dtypes["at"] == pl.Datetime("ms", "UTC")
    assert reading.required == frozenset({"machine_id", "tags", "at"})
    assert columns_of(Card).required == frozenset({"number"})
    assert columns_of(Model).required == frozenset({"user"})
    assert columns_of({"a": int, "b": pl.Float32}).dtypes == {"a": pl.Int64, "b": pl.Float32}
    with pytest.raises(SchemaError, match="field 'x'"):
        columns_of({"x": complex})
