"""Compaction and vacuum run next to the writer without blocking it or losing a commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from haeryu.stores.lake import DeltaSink
from haeryu.stores.lake.files import local_put, write_files
from haeryu.stores.lake.maintenance import Maintenance
from haeryu.stream.sinks import SinkContext
from support.delta_shim import build_shim
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


def test_vacuum_deletes_old_unreferenced_files_and_keeps_every_row(tmp_path: Path) -> None:
    uri = tmp_path / "t"
    sink = DeltaSink(uri, partition_by=None, maintain_every=None)
    sink.open(SinkContext("readings", "a", 0))
    for start in range(0, 100, 10):
        sink.write(_frame(range(start, start + 10)))
        sink.flush()  # 10 small files
    small = {p.name for p in uri.glob("*.parquet")}
    # Two files no commit added (a writer killed after writing them): one 2 h old, one new.
    put = local_put(str(uri))
    old_orphan = write_files(_frame(range(500, 510)), [], put)[0].path
    young_orphan = write_files(_frame(range(600, 610)), [], put)[0].path
    two_hours_ago = time.time() - 7200
    os.utime(uri / old_orphan, (two_hours_ago, two_hours_ago))
    # Compaction run 2 h ago (the shim moves the clock): its removals are 2 h old.
    shim = build_shim(tmp_path)
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import deltalake; deltalake.DeltaTable({str(uri)!r}).optimize.compact()",
        ],
        env={**os.environ, "LD_PRELOAD": str(shim), "HAERYU_SHIFT_SECONDS": "-7200"},
        check=True,
        timeout=60,
    )
    table = DeltaTable(str(uri))
    assert not small & {Path(u).name for u in table.file_uris()}  # all compacted away
    maintenance = Maintenance(str(uri), retention_hours=1)
    maintenance.run_once()
    on_disk = {p.name for p in uri.glob("*.parquet")}
    live = {Path(u).name for u in DeltaTable(str(uri)).file_uris()}
    assert maintenance.vacuumed_files == len(small) + 1  # the small files and the old orphan
    assert on_disk == live | {young_orphan}  # younger than the retention: kept
    assert sorted(pl.read_delta(str(uri))["id"].to_list()) == list(range(100))
