"""A full disk and a corrupt or foreign Delta log: a clear error, nothing lost or half-written."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from haeryu.stores.lake import DeltaSink
from haeryu.stores.lake.store_errors import BrokenTableError
from haeryu.stream.sinks import Backpressure, SinkContext


def _frame(offsets: range) -> pl.DataFrame:
    n = len(offsets)
    return pl.DataFrame(
        {
            "id": list(offsets),
            "text": [f"reading {i:08d} " * 4 for i in offsets],  # bulky: fills a disk
            "_topic": ["in"] * n,
            "_partition": pl.Series([0] * n, dtype=pl.Int32),
            "_offset": pl.Series(list(offsets), dtype=pl.Int64),
        }
    )


def _sink(table: Path) -> DeltaSink:
    sink = DeltaSink(table, partition_by=None, commit_timeout=0.3, maintain_every=None)
    sink.open(SinkContext("readings", "a", 0))
    return sink


def _referenced(table: Path) -> set[str]:
    return {Path(uri).name for uri in DeltaTable(str(table)).file_uris()}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a real disk that fills up (needs root, as `make test` runs)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_waits_with_a_clear_error_and_commits_everything_once_freed(
    small_disk: Path,
) -> None:
    table = small_disk / "t"
    sink = _sink(table)
    sink.write(_frame(range(0, 100)))
    sink.flush()
    filler = small_disk / "filler"
    with open(filler, "wb") as out, pytest.raises(OSError):
        while True:  # take every free block, as another program would
            out.write(b"\0" * 65536)
            out.flush()
    sink.write(_frame(range(100, 20_100)))
    with pytest.raises(Backpressure, match="disk holding the table is full: free space"):
        sink.flush()
    # Data: the 20,000 rows stay buffered, the table still holds only the first commit,
    # and no partial data file is left beside it.
    assert sink._rows == 20_000
    assert DeltaTable(str(table)).version() == 0
    on_disk = {p.name for p in table.glob("*.parquet")}
    assert on_disk == _referenced(table)
    filler.unlink()
    sink.flush()  # the checkpoint is retried once there is room
    ids = pl.read_delta(str(table))["id"]
    assert sorted(ids.to_list()) == list(range(20_100))  # every row once
    assert DeltaTable(str(table)).transaction_version("haeryu|readings|in|0") == 20_100


def _table_with_two_commits(path: Path) -> DeltaSink:
    sink = _sink(path)
    sink.write(_frame(range(0, 10)))
    sink.flush()
    sink.write(_frame(range(10, 20)))
    sink.flush()
    return sink


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("{this is not json\n", "is corrupt"),
        (
            json.dumps(
                {
                    "protocol": {
                        "minReaderVersion": 3,
                        "minWriterVersion": 7,
                        "readerFeatures": ["someoneElsesFeature"],
                        "writerFeatures": ["someoneElsesFeature"],
                    }
                }
            )
            + "\n",
            "table features haeryu's deltalake does not support",
        ),
    ],
    ids=["corrupt", "foreign"],
)
def test_a_corrupt_or_foreign_log_entry_stops_the_sink_with_what_to_do(
    tmp_path: Path, entry: str, says: str
) -> None:
    table = tmp_path / "t"
    writer = _table_with_two_commits(table)
    bad = table / "_delta_log" / "00000000000000000002.json"
    bad.write_text(entry)
    files_before = sorted(p.name for p in table.glob("*.parquet"))
    # At start: a clear error naming the entry, before anything is written.
    with pytest.raises(BrokenTableError, match=says) as raised:
        _sink(table)
    assert str(bad) in str(raised.value)
    assert "restore the entry from a backup or move the table aside" in str(raised.value)
    # While running: the checkpoint fails with the same error, not an endless retry,
    # and the rows stay buffered (their offsets are not committed: they are replayed).
    writer.write(_frame(range(20, 30)))
    with pytest.raises(BrokenTableError, match=says):
        writer.flush()
    assert writer._rows == 10
    assert bad.read_text() == entry  # the log is left as it was for the user to inspect
    # Repaired (the entry moved aside): the rows are committed once, from the data file
    # written before the error; no file is left that the table does not reference.
    os.rename(bad, tmp_path / "moved-aside.json")
    writer.flush()
    assert sorted(pl.read_delta(str(table))["id"].to_list()) == list(range(30))
    assert {p.name for p in table.glob("*.parquet")} == _referenced(table)
    assert set(files_before) < _referenced(table)
