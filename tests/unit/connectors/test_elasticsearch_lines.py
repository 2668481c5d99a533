"""How the Elasticsearch sink turns rows into bulk entries, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from haeryu.connectors.elasticsearch import ElasticsearchSink, bulk_lines, document_ids
from haeryu.stream.sinks import PlanError, SinkError


def test_ids_default_to_topic_partition_offset() -> None:
    frame = pl.DataFrame({"_topic": ["logs", "logs"], "_partition": [0, 3], "_offset": [7, 12]})
    assert document_ids(frame, None).to_list() == ["logs-0-7", "logs-3-12"]


def test_an_id_column_wins_and_must_be_set_on_every_row() -> None:
    frame = pl.DataFrame({"order": [5, None]})
    with pytest.raises(SinkError, match="1 rows have no 'order'"):
        document_ids(frame, "order")
    assert document_ids(frame.head(1), "order").to_list() == ["5"]
    with pytest.raises(PlanError, match="id column 'nope' is not in the frame"):
        document_ids(frame, "nope")


def test_without_offsets_or_an_id_column_the_sink_says_what_to_do() -> None:
    with pytest.raises(PlanError, match="name a column that identifies each row with `id=`"):
        document_ids(pl.DataFrame({"x": [1]}), None)


def test_entries_are_an_action_line_and_a_document_line() -> None:
    frame = pl.DataFrame(
        {
            "key": ['a"b\\c', "온도"],
            "n": [1, None],
            "at": [datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)] * 2,
            "tags": [["x"], []],
        }
    ).with_columns(pl.col("at").cast(pl.Datetime("ms", "UTC")))
    entries = bulk_lines(frame, index="logs", ids=frame["key"], columns=["key", "n", "at", "tags"])
    assert len(entries) == 2
    action, doc, end = entries[0].split(b"\n")
    assert end == b""
    assert json.loads(action) == {"index": {"_index": "logs", "_id": 'a"b\\c'}}
    assert json.loads(doc) == {
        "key": 'a"b\\c',
        "n": 1,
        "at": "2026-01-02T03:04:05.678+00:00",
        "tags": ["x"],
    }
    action, doc, _ = entries[1].decode().split("\n")
    assert json.loads(action)["index"]["_id"] == "온도"
    assert json.loads(doc)["n"] is None


def test_a_frame_with_nothing_to_send_says_which_option_to_set() -> None:
    sink = ElasticsearchSink("http://127.0.0.1:1", "logs", timestamp_field=None)
    with pytest.raises(PlanError, match=r"no columns to send .* name them with `columns=`"):
        sink.write(pl.DataFrame({"_offset": [1], "_topic": ["t"], "_partition": [0]}))
