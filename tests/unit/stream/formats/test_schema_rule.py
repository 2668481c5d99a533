"""One rule for every kind of schema a source accepts.

A field not typed ``X | None`` is required: a record without it (or with null) is a
dead letter whose reason names the field.  A value of the wrong JSON type is a dead
letter naming the field and the expected type; it is never coerced ("device": 42 for a
string does not become "42").  Optional fields may be absent or null.  Fields the
schema does not name are dropped.  Every record ends up either decoded or in the DLQ.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from typing import Any, NotRequired, Optional, TypedDict

import fastavro
import polars as pl
import pydantic
import pytest

from haeryu.stream.api.schema import columns_of
from haeryu.stream.formats.avro import AvroFormat
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.formats.json import JsonFormat
from haeryu.stream.runtime.source_decoder import SourceDecoder


@dataclasses.dataclass
class AsDataclass:
    device: str
    temperature: float
    count: int
    note: str | None = None


class AsTypedDict(TypedDict):
    device: str
    temperature: float
    count: int
    note: NotRequired[str | None]


class AsPydantic(pydantic.BaseModel):
    device: str
    temperature: float
    count: int
    note: str | None = None


SCHEMAS: dict[str, Any] = {
    "mapping of Python types": {
        "device": str,
        "temperature": float,
        "count": int,
        "note": str | None,
    },
    "mapping of Polars types": {
        "device": pl.String,
        "temperature": pl.Float64,
        "count": pl.Int64,
        "note": Optional[pl.String],  # noqa: UP045 - the spelling users write for dtypes
    },
    "dataclass": AsDataclass,
    "TypedDict": AsTypedDict,
    "pydantic model": AsPydantic,
}

GOOD = {"device": "press-1", "temperature": 71.5, "count": 3}


def decode(schema: Any, records: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    values = [json.dumps(r).encode() for r in records]
    out = SourceDecoder(JsonFormat(schema)).decode(RawBatch.of("t", values))
    assert out.frame.height + out.dead.height == len(records)  # nothing lost
    return out.frame, out.dead


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_a_missing_or_null_required_field_is_a_dead_letter_naming_it(schema: Any) -> None:
    absent = {k: v for k, v in GOOD.items() if k != "device"}
    frame, dead = decode(schema, [GOOD, absent, {**GOOD, "device": None}])
    assert frame["device"].to_list() == ["press-1"]
    assert dead["_offset"].to_list() == [1, 2]
    assert dead["error"].to_list() == ["field 'device' is required but missing or null"] * 2
    assert dead["value"].to_list()[0] == json.dumps(absent).encode()  # the original bytes


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("device", 42, "field 'device': expected String, got number 42"),
        ("device", True, "field 'device': expected String, got boolean true"),
        ("device", {"id": 1}, "field 'device': expected String, got object {\"id\": 1}"),
        ("temperature", "hot", "field 'temperature': expected Float64, got string \"hot\""),
        ("count", "3", "field 'count': expected Int64, got string \"3\""),
        ("count", 2.5, "field 'count': expected Int64, got number 2.5"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_dead_letter_naming_field_and_type(
    schema: Any, field: str, value: Any, expected: str
) -> None:
    frame, dead = decode(schema, [GOOD, {**GOOD, field: value}, GOOD])
    assert frame.height == 2 and frame["device"].to_list() == ["press-1"] * 2
    assert dead["_offset"].to_list() == [1]
    assert dead["error"].to_list() == [expected]


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_optional_fields_may_be_absent_or_null_and_extra_fields_are_dropped(schema: Any) -> None:
    frame, dead = decode(
        schema, [GOOD, {**GOOD, "note": None}, {**GOOD, "note": "ok", "extra": [1, 2]}]
    )
    assert dead.height == 0
    assert frame["note"].to_list() == [None, None, "ok"]
    assert "extra" not in frame.columns


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=SCHEMAS.keys())
def test_strings_that_look_like_numbers_stay_strings(schema: Any) -> None:
    frame, dead = decode(schema, [{**GOOD, "device": "42"}, {**GOOD, "device": "true"}])
    assert dead.height == 0
    assert frame["device"].to_list() == ["42", "true"]


def test_a_polars_schema_has_no_optional_fields() -> None:
    schema = pl.Schema({"device": pl.String, "count": pl.Int64})
    assert columns_of(schema).required == {"device", "count"}
    frame, dead = decode(schema, [{"device": "a", "count": 1}, {"count": 2}, {"device": 7}])
    assert frame["device"].to_list() == ["a"]
    assert dead["error"].to_list() == [
        "field 'device' is required but missing or null",
        "field 'device': expected String, got number 7; "
        "field 'count' is required but missing or null",
    ]


def test_nested_fields_are_not_coerced_either() -> None:
    schema = {"tags": list[str], "where": pl.Struct({"site": pl.String})}
    frame, dead = decode(
        schema,
        [
            {"tags": ["a"], "where": {"site": "s1"}},
            {"tags": ["a", 1], "where": {"site": "s1"}},
            {"tags": ["b"], "where": {"site": 5}},
        ],
    )
    assert frame["tags"].to_list() == [["a"]]
    assert frame.schema["tags"] == pl.List(pl.String)
    assert dead["error"].to_list() == [
        "field 'tags': expected List(String), got array [\"a\", 1]",
        "field 'where': expected Struct({'site': String}), got object {\"site\": 5}",
    ]


def test_a_value_out_of_the_declared_range_names_field_and_type() -> None:
    frame, dead = decode({"n": pl.Int16}, [{"n": 1}, {"n": 70000}])
    assert frame["n"].to_list() == [1]
    assert dead["error"].to_list() == ["field 'n': expected Int16, the value does not convert"]


# ----------------------------------------------------------------------------- Avro

AVRO = {
    "type": "record",
    "name": "Reading",
    "fields": [
        {"name": "device", "type": "string"},
        {"name": "temperature", "type": "double"},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def avro(record: dict[str, Any], schema: dict[str, Any] = AVRO) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def test_avro_follows_the_same_rule_as_far_as_binary_avro_can_tell() -> None:
    without_device = {**AVRO, "fields": AVRO["fields"][1:]}
    device_as_long = {
        **AVRO,
        "fields": [{"name": "device", "type": "long"}, *AVRO["fields"][1:]],
    }
    with_extra = {**AVRO, "fields": [*AVRO["fields"], {"name": "extra", "type": "long"}]}
    values = [
        avro({"device": "a", "temperature": 1.0, "note": None}),  # optional null: fine
        avro({"temperature": 2.0, "note": None}, without_device),  # required field missing
        avro({"device": 42, "temperature": 3.0, "note": None}, device_as_long),  # wrong type
        avro({"device": "b", "temperature": 4.0, "note": "x", "extra": 1}, with_extra),
    ]
    out = SourceDecoder(AvroFormat(AVRO)).decode(RawBatch.of("t", values))
    assert out.frame["device"].to_list() == ["a"]
    assert out.frame["note"].to_list() == [None]
    errors = dict(zip(out.dead["_offset"].to_list(), out.dead["error"].to_list(), strict=True))
    assert sorted(errors) == [1, 2, 3]
    # Binary Avro has no field names: the reason names the first field that breaks.
    for offset in (1, 2):
        assert re.match(
            r"invalid Avro: field '\w+' \(expected [^)]+\) cannot be read", errors[offset]
        )
    assert "left after the last field 'note'" in errors[3]


def test_a_number_for_a_datetime_field_is_a_dead_letter_and_iso_dates_are_not_read_twice() -> None:
    fmt = JsonFormat({"when": pl.Datetime("ms", "UTC"), "device": str})
    assert fmt._text_fields == ["device"]  # ISO dates start with digits: no second read
    frame, dead = decode(
        fmt.columns,
        [
            {"when": "2024-05-01T10:00:00Z", "device": "a"},
            {"when": 1714557600000, "device": "b"},
            {"when": True, "device": "c"},
        ],
    )
    assert frame["device"].to_list() == ["a"]
    assert (
        dead["error"].to_list()
        == [
            "field 'when': expected Datetime(time_unit='ms', time_zone='UTC'), "
            "the value does not convert"
        ]
        * 2
    )
