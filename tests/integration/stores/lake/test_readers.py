"""pyarrow, Polars and DuckDB in another process read the table while it is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from haeryu.stores.lake import DeltaSink
from haeryu.stream.sinks import SinkContext

HERE = Path(__file__).parent


def _frame(start: int, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(start, start + n)),
            "_topic": ["in"] * n,
            "_partition": pl.Series([0] * n, dtype=pl.Int32),
            "_offset": pl.Series(list(range(start, start + n)), dtype=pl.Int64),
            "_event_time": [1_700_000_000_000 + i * 60_000 for i in range(start, start + n)],
        }
    )


@pytest.mark.timeout(120)
def test_readers_in_other_processes_see_whole_commits_while_the_table_is_written(
    tmp_path: Path,
) -> None:
    sink = DeltaSink(tmp_path / "t", partition_by="hour", maintain_every=0.2, retention_hours=1)
    sink.open(SinkContext("readings", "w", 0))
    sink.write(_frame(0, 500))
    sink.flush()
    done = tmp_path / "done"
    reader = subprocess.Popen(
        [sys.executable, str(HERE / "read_table.py"), str(tmp_path / "t"), str(done)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        start = 500
        assert reader.stdout is not None
        first = reader.stdout.readline()  # the reader is up: write while it reads
        assert first, "the reader process died"
        while start < 20_000:
            sink.write(_frame(start, 500))
            sink.flush()
            start += 500
        done.touch()
        out, _ = reader.communicate(timeout=60)
    finally:
        sink.close()
        if reader.poll() is None:
            reader.kill()
    reads = [json.loads(line) for line in [first, *out.splitlines()]]
    assert reader.returncode == 0
    assert all(r["ids_ok"] and r["rows"] % 500 == 0 for r in reads), reads
    finals = {r["reader"]: r["rows"] for r in reads[-3:]}
    assert finals == {"pyarrow": 20_000, "polars": 20_000, "duckdb": 20_000}
    assert len({r["rows"] for r in reads}) > 2, "the reads did not overlap the writes"
