"""Schemas from classes, durations from text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import polars as pl
import pydantic
import pytest

from haeryu.stream.api.durations import to_ms
from haeryu.stream.api.schema import columns_of
from haeryu.stream.errors import PlanError, SchemaError


def test_durations() -> None:
    assert to_ms("1h30m") == 5_400_000
    assert to_ms("1.5s") == 1500
    assert to_ms(0) == 0
    assert to_ms(dt.timedelta(minutes=1)) == 60_000
    for bad in ("10", "ten s", "", "-1s"):
        with pytest.raises(PlanError, match="500ms"):
            to_ms(bad)
    with pytest.raises(PlanError):
        to_ms(-5)
    # A bare number has no unit: refused, and the error says how to write it.
    for number in (250, 1.5):
        with pytest.raises(PlanError, match=f"'{number}ms' or '{number}s'"):
            to_ms(number, what="window size")


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
