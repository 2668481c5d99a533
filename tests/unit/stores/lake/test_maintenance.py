"""Compaction and vacuum run next to the writer without blocking it or losing a commit."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from haeryu.stores.lake import DeltaSink
from haeryu.stores.lake.maintenance import Maintenance
from haeryu.stream.sinks import SinkContext
from support.kafka import wait_for


def _frame(offsets: range) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(offsets),
            "_topic": ["in"] * len(offsets),
            "_partition": pl.Series([0] * len(offsets), dtype=pl.Int32),
            "_offset": pl.Series(list(offsets), dtype=pl.Int64),
        }
    )


def test_compaction_while_writing_loses_no_commit(tmp_path: Path) -> None:
    sink = DeltaSink(tmp_path / "t", partition_by=None, maintain_every=0.02, retention_hours=1)
    sink.open(SinkContext("readings", "a", 0))
    assert sink.maintenance is not None
    try:
        for start in range(0, 300, 10):
            sink.write(_frame(range(start, start + 10)))
            sink.flush()  # 30 small commits while compaction runs
        wait_for(
            lambda: sink.maintenance and sink.maintenance.compacted_files > 0, 20, "a compaction"
        )
    finally:
        sink.close()
    assert sink.commits == 30
    table = DeltaTable(str(tmp_path / "t"))
    assert sorted(pl.read_delta(str(tmp_path / "t"))["id"].to_list()) == list(range(300))
    assert len(table.file_uris()) < 30  # small files were compacted
    assert table.transaction_version("haeryu|readings|in|0") == 300
    # a later round compacts what is left and vacuums without touching live files
    sink.maintenance.run_once()
    assert sorted(pl.read_delta(str(tmp_path / "t"))["id"].to_list()) == list(range(300))


def test_vacuum_refuses_a_retention_that_could_delete_files_in_use(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Maintenance(str(tmp_path / "t"), retention_hours=0).start()
