"""Bulk decoding and encoding: JSON, Avro, raw; metadata columns; dead letters."""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import fastavro
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.stream.columns import EVENT_TIME, HEADERS, KEY, OFFSET, PARTITION, TIMESTAMP, TOPIC
from haeryu.stream.formats.avro import AvroFormat, avro_columns
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.formats.json import JsonFormat
from haeryu.stream.formats.raw import RawFormat
from haeryu.stream.formats.registry import make_format
from haeryu.stream.runtime.source_decoder import SourceDecoder


@dataclass
class Reading:
    machine_id: str
    temperature: float
    ts: int
    level: int | None = None


def decode(values: Sequence[bytes | None], **kwargs: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    decoder = SourceDecoder(JsonFormat(Reading), timestamp="ts", **kwargs)  # type: ignore[arg-type]
    out = decoder.decode(RawBatch.of("t", list(values), keys=[b"k"] * len(values)))
    return out.frame, out.dead


def test_a_clean_batch_decodes_into_one_frame_with_metadata() -> None:
    values = [
        json.dumps({"machine_id": f"m{i}", "temperature": i / 2, "ts": 1000 + i}).encode()
        for i in range(5)
    ]
    frame, dead = decode(values)
    assert dead.height == 0
    assert frame["machine_id"].to_list() == [f"m{i}" for i in range(5)]
    assert frame[OFFSET].to_list() == list(range(5))
    assert frame[PARTITION].dtype == pl.Int32
    assert frame[KEY].to_list() == ["k"] * 5
    assert frame[TOPIC].to_list() == ["t"] * 5
    assert frame[EVENT_TIME].to_list() == [1000 + i for i in range(5)]


def test_pretty_printed_json_with_newlines_still_decodes() -> None:
    pretty = json.dumps({"machine_id": "a", "temperature": 1.0, "ts": 5}, indent=2).encode()
    frame, dead = decode([pretty, b'{"machine_id": "b", "temperature": 2.0, "ts": 6}'])
    assert dead.height == 0
    assert frame["machine_id"].to_list() == ["a", "b"]


def test_two_objects_in_one_value_are_a_bad_record_not_two_rows() -> None:
    frame, dead = decode([b'{"machine_id": "a", "temperature": 1, "ts": 1}\n{"x": 1}'])
    assert frame.height == 0
    assert dead.height == 1


def test_values_that_do_not_fit_the_declared_types_are_dead_lettered() -> None:
    fmt = JsonFormat({"n": pl.Int16, "ts": pl.Int64, "when": pl.Datetime("ms", "UTC")})
    frame, good, errors = fmt.decode(
        [
            b'{"n": 1, "ts": 1, "when": "2024-05-01T10:00:00Z"}',
            b'{"n": 70000, "ts": 2}',
            b'{"n": 2, "ts": 3, "when": "yesterday"}',
        ]
    )
    assert good == [0]
    assert frame["n"].dtype == pl.Int16
    assert frame["when"].to_list() == [dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)]
    assert [i for i, _ in errors] == [1, 2]
    assert "does not convert" in errors[0][1]


def test_event_time_from_the_kafka_timestamp_and_from_seconds() -> None:
    decoder = SourceDecoder(JsonFormat())
    out = decoder.decode(RawBatch.of("t", [b'{"a": 1}'], timestamps=[1234]))
    assert out.frame[EVENT_TIME].to_list() == [1234]
    assert out.frame[TIMESTAMP].dt.epoch("ms").to_list() == [1234]
    seconds = SourceDecoder(JsonFormat(), timestamp="t", timestamp_unit="s")
    assert seconds.decode(RawBatch.of("t", [b'{"t": 1.5}'])).frame[EVENT_TIME].to_list() == [1500]
    iso = SourceDecoder(JsonFormat(), timestamp="t")
    out = iso.decode(RawBatch.of("t", [b'{"t": "1970-01-01T00:00:02Z"}', b'{"t": "soon"}']))
    assert out.frame[EVENT_TIME].to_list() == [2000]
    assert out.dead["error"].to_list() == ["event time field 't' is missing or unreadable"]


def test_metadata_columns_no_one_reads_are_not_built() -> None:
    calls = []

    def keys() -> list[bytes | None]:
        calls.append("keys")
        return [b"k"]

    batch = RawBatch("t", [b'{"ts": 1}'], keys, [0], [7], lambda: [0])
    decoder = SourceDecoder(JsonFormat(), timestamp="ts", metadata=frozenset())
    frame = decoder.decode(batch).frame
    assert KEY not in frame.columns and TIMESTAMP not in frame.columns
    assert calls == []


def test_headers_column_is_opt_in() -> None:
    batch = RawBatch("t", [b"{}"], [None], [0], [0], [0], [[("trace", b"abc")]])
    frame = SourceDecoder(JsonFormat(), headers=True).decode(batch).frame
    assert frame[HEADERS].to_list() == [[{"key": "trace", "value": b"abc"}]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.none(),
            st.sampled_from([b'{"machine_id":"a","temperature":1,"ts":2}', b"{}", b'{"ts": 1}']),
        )
    )
)
def test_any_bytes_decode_or_become_dead_letters(values: list[bytes | None]) -> None:
    frame, dead = decode(values)
    assert frame.height + dead.height == len(values)
    assert sorted(frame[OFFSET].to_list() + dead[OFFSET].to_list()) == list(range(len(values)))


def test_json_encoding_leaves_out_metadata_and_base64s_bytes() -> None:
    frame = pl.DataFrame({"a": [1], "b": [b"\x00\x01"], KEY: ["k"], PARTITION: [0]})
    assert JsonFormat().encode(frame) == [b'{"a":1,"b":"AAE="}']


def test_raw_and_text_formats() -> None:
    raw = RawFormat()
    frame, good, errors = raw.decode([b"\xff", b"ok"])
    assert frame["value"].to_list() == [b"\xff", b"ok"] and good == [0, 1] and not errors
    text = make_format("text", None)
    frame, good, errors = text.decode([b"\xff", b"ok"])
    assert frame["value"].to_list() == ["ok"] and good == [1] and errors[0][0] == 0
    assert text.encode(pl.DataFrame({"value": ["x"]})) == [b"x"]


AVRO = {
    "type": "record",
    "name": "Reading",
    "fields": [
        {"name": "machine_id", "type": "string"},
        {"name": "temperature", "type": "double"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}


def avro_bytes(record: dict, *, framed: bool = False) -> bytes:
    buffer = io.BytesIO()
    if framed:
        buffer.write(b"\x00" + struct.pack(">I", 7))
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(AVRO), record)
    return buffer.getvalue()


def test_avro_decodes_records_and_rejects_garbage() -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    fmt = AvroFormat(AVRO, confluent=True, schema_id=7)
    good = avro_bytes(
        {"machine_id": "m", "temperature": 1.5, "ts": when, "note": None}, framed=True
    )
    frame, rows, errors = fmt.decode([good, b"\x00\x00\x00\x00\x07\xff\xff", b"nope"])
    assert rows == [0]
    assert frame["machine_id"].to_list() == ["m"]
    assert frame["ts"].to_list() == [when]
    assert [i for i, _ in errors] == [1, 2]
    assert fmt.encode(frame) == [good]
    assert avro_columns(AVRO).required == frozenset({"machine_id", "temperature", "ts"})


def test_unknown_format_names_say_what_exists() -> None:
    with pytest.raises(Exception, match="json"):
        make_format("xml", None)  # type: ignore[arg-type]
