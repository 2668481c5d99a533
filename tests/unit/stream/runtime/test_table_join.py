"""Tables from compacted topics and stream-table joins."""

from __future__ import annotations

import polars as pl

from haeryu.stream.api.nodes import Table
from haeryu.stream.formats.base import RawBatch
from haeryu.stream.formats.json import JsonFormat
from haeryu.stream.runtime.table_join import TableState


def table_batch(records: list[tuple[str, bytes | None]]) -> RawBatch:
    return RawBatch.of("machines", [v for _, v in records], keys=[k.encode() for k, _ in records])


def test_table_keeps_the_latest_value_and_honours_tombstones() -> None:
    table = TableState(Table("machines", JsonFormat(), "machine_id"))
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
