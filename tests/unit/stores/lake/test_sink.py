"""DeltaSink: one commit per checkpoint, exactly once across crashes, zombies fenced."""

from __future__ import annotations

import socket
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from haeryu.stores.lake import DeltaSink
from haeryu.stores.lake.sink import FencedError
from haeryu.stream import Pipeline
from haeryu.stream.sinks import Backpressure, SinkContext, SinkError
from haeryu.testing import (
    Crashed,
    LocalCluster,
    crash_after_checkpoint_step,
    crash_mid_batch,
    run_local,
)

ROWS = [{"id": i, "name": f"n{i}", "at": 1_700_000_000_000 + i * 3_600_000} for i in range(120)]


def _pipeline(table: Path) -> tuple[Pipeline, DeltaSink]:
    p = Pipeline("readings")
    sink = DeltaSink(table)
    p.source("in", format="json").to_sink(sink)
    return p, sink


def _ids(table: Path) -> list[int]:
    return sorted(pl.read_delta(str(table))["id"].to_list())


def test_each_checkpoint_is_one_commit_holding_the_next_offsets(tmp_path: Path) -> None:
    p, sink = _pipeline(tmp_path / "t")
    run_local(
        p, {"in": ROWS}, batch_size=10, partitions=2, cluster=LocalCluster(), checkpoint_every=4
    )
    table = DeltaTable(str(tmp_path / "t"))
    assert _ids(tmp_path / "t") == list(range(120))
    # 12 batches, a checkpoint every 4: three commits of 40 rows each
    assert sink.commit_rows == [40, 40, 40]
    assert table.version() == 2
    assert table.transaction_version("haeryu|readings|in|0") == 60
    assert table.transaction_version("haeryu|readings|in|1") == 60
    assert table.metadata().partition_columns == ["event_date"]


@pytest.mark.parametrize("step", [1, 2, 3, 4])
@pytest.mark.parametrize("checkpoint", [1, 2])
def test_a_crash_after_any_checkpoint_step_stores_each_row_once(
    tmp_path: Path, step: int, checkpoint: int
) -> None:
    cluster = LocalCluster()
    p, _ = _pipeline(tmp_path / "t")
    with pytest.raises(Crashed):
        run_local(
            p,
            {"in": ROWS},
            batch_size=10,
            partitions=3,
            cluster=cluster,
            checkpoint_every=3,
            crash=crash_after_checkpoint_step(step, checkpoint=checkpoint),
        )
    p, _ = _pipeline(tmp_path / "t")  # a new process: a new sink object
    run_local(p, {"in": ROWS}, batch_size=10, partitions=3, cluster=cluster, checkpoint_every=3)
    assert _ids(tmp_path / "t") == list(range(120))


def test_a_crash_in_the_middle_of_a_batch_stores_each_row_once(tmp_path: Path) -> None:
    cluster = LocalCluster()
    p, _ = _pipeline(tmp_path / "t")
    with pytest.raises(Crashed):
        run_local(
            p,
            {"in": ROWS},
            batch_size=10,
            cluster=cluster,
            checkpoint_every=2,
            crash=crash_mid_batch(5, after_records=3),
        )
    p, _ = _pipeline(tmp_path / "t")
    run_local(p, {"in": ROWS}, batch_size=10, cluster=cluster, checkpoint_every=2)
    assert _ids(tmp_path / "t") == list(range(120))


def _frame(partition: int, offsets: range) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [partition * 1000 + o for o in offsets],
            "_topic": ["in"] * len(offsets),
            "_partition": pl.Series([partition] * len(offsets), dtype=pl.Int32),
            "_offset": pl.Series(list(offsets), dtype=pl.Int64),
            "_event_time": [1_700_000_000_000] * len(offsets),
        }
    )


def _sink(table: Path, worker: str) -> DeltaSink:
    sink = DeltaSink(table, commit_timeout=1.0)
    sink.open(SinkContext("readings", worker, 0))
    return sink


def test_a_replay_skips_rows_the_table_or_the_buffer_holds(tmp_path: Path) -> None:
    first = _sink(tmp_path / "t", "a")
    first.write(_frame(0, range(0, 10)))
    first.flush()
    again = _sink(tmp_path / "t", "b")  # a restart
    again.write(_frame(0, range(0, 15)))  # 0-9 are in the table
    again.write(_frame(0, range(12, 20)))  # 12-14 are in the buffer (a rewind)
    again.flush()
    assert _ids(tmp_path / "t") == list(range(20))


def test_a_zombie_that_lost_its_partition_is_fenced(tmp_path: Path) -> None:
    zombie = _sink(tmp_path / "t", "zombie")
    zombie.write(_frame(0, range(0, 10)))
    zombie.flush()
    zombie.write(_frame(0, range(10, 20)))  # it does not know p0 moved
    owner = _sink(tmp_path / "t", "owner")
    owner.write(_frame(0, range(10, 25)))
    owner.flush()
    with pytest.raises(FencedError, match="another writer"):
        zombie.flush()
    zombie.flush()  # its rows of p0 are gone: nothing is written twice
    assert _ids(tmp_path / "t") == list(range(25))


def test_a_fenced_writer_still_commits_the_partitions_it_owns(tmp_path: Path) -> None:
    zombie = _sink(tmp_path / "t", "zombie")
    zombie.write(_frame(0, range(0, 10)))
    zombie.write(_frame(1, range(0, 10)))
    zombie.flush()
    zombie.write(_frame(0, range(10, 20)))  # p0 moved to the owner meanwhile ...
    zombie.write(_frame(1, range(10, 20)))  # ... p1 is still the zombie's
    owner = _sink(tmp_path / "t", "owner")
    owner.write(_frame(0, range(10, 25)))
    owner.flush()
    with pytest.raises(FencedError):
        zombie.flush()
    # Its data files mixed p0 and p1: they are written again with the p1 rows only.
    zombie.flush()
    want = [p * 1000 + o for p, n in ((0, 25), (1, 20)) for o in range(n)]
    assert _ids(tmp_path / "t") == want
    live = {Path(u).name for u in DeltaTable(str(tmp_path / "t")).file_uris()}
    assert {p.name for p in (tmp_path / "t").rglob("*.parquet")} == live  # none left over


def test_deltalake_rejects_a_commit_from_a_stale_snapshot_of_the_same_app_id(
    tmp_path: Path,
) -> None:
    owner = _sink(tmp_path / "t", "owner")
    owner.write(_frame(0, range(0, 5)))
    owner.flush()
    stale = DeltaTable(str(tmp_path / "t"))  # a zombie read the table here ...
    owner.write(_frame(0, range(5, 10)))
    owner.flush()  # ... then the owner committed p0 again
    zombie = _sink(tmp_path / "t", "zombie")
    zombie.write(_frame(0, range(5, 10)))
    zombie._collect()  # its data files are written, only the commit is left
    with pytest.raises(FencedError, match="at the same time"):
        zombie._commit(stale, zombie._adds, {("in", 0): 10})
    assert _ids(tmp_path / "t") == list(range(10))


def test_a_partition_that_comes_back_is_read_afresh(tmp_path: Path) -> None:
    a = _sink(tmp_path / "t", "a")
    a.write(_frame(0, range(0, 10)))
    a.flush()
    a.commit({("in", 0): 10})
    a.commit({})  # a rebalance took p0 away
    b = _sink(tmp_path / "t", "b")
    b.write(_frame(0, range(10, 20)))
    b.flush()
    a.write(_frame(0, range(20, 30)))  # p0 came back to a, from b's offsets on
    a.flush()
    assert _ids(tmp_path / "t") == list(range(30))


def test_a_full_buffer_is_committed_before_the_checkpoint(tmp_path: Path) -> None:
    sink = DeltaSink(tmp_path / "t", max_buffer_rows=15)
    sink.open(SinkContext("readings", "a", 0))
    sink.write(_frame(0, range(0, 10)))
    assert sink.commits == 0
    sink.write(_frame(0, range(10, 20)))
    assert sink.commits == 1
    assert DeltaTable(str(tmp_path / "t")).transaction_version("haeryu|readings|in|0") == 20


def test_partitioning_by_hour_or_a_column(tmp_path: Path) -> None:
    cases: list[tuple[str | list[str] | None, list[str]]] = [
        ("hour", ["event_date", "event_hour"]),
        (["_partition"], ["_partition"]),
        (None, []),
    ]
    for i, (partition_by, columns) in enumerate(cases):
        path = tmp_path / f"t{i}"
        sink = DeltaSink(path, partition_by=partition_by)
        sink.open(SinkContext("readings", "a", 0))
        sink.write(_frame(0, range(3)))
        sink.flush()
        assert DeltaTable(str(path)).metadata().partition_columns == columns


def test_an_unreachable_store_makes_the_worker_wait_and_keeps_the_rows(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    options = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "max_retries": "0",
    }
    sink = DeltaSink("s3://lake/t", storage_options=options, commit_timeout=0.3)
    # At start: a clear error (a wrong endpoint is the likely cause), nothing written.
    with pytest.raises(SinkError, match=r"at start: .*cannot open the table .*AWS_ENDPOINT_URL"):
        sink.open(SinkContext("readings", "a", 0))
    # Later (a worker rejoining during an outage): the writes wait for the store.
    sink.open(SinkContext("readings", "a", 0))
    with pytest.raises(Backpressure, match="cannot read the table"):
        sink.write(_frame(0, range(0, 10)))
    assert sink.retries > 0
    assert sink._rows == 0  # the worker calls write again with the same rows


def test_a_bare_table_name_lives_under_the_lake_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAERYU_LAKE", str(tmp_path / "lake"))
    assert DeltaSink("readings").uri == str(tmp_path / "lake" / "readings")
    assert DeltaSink("readings", root=tmp_path).uri == str(tmp_path / "readings")
    assert DeltaSink("s3://bucket/readings").uri == "s3://bucket/readings"


def test_rows_without_an_event_time_cannot_be_partitioned_by_date(tmp_path: Path) -> None:
    sink = _sink(tmp_path / "t", "a")
    sink.write(_frame(0, range(3)).drop("_event_time"))
    with pytest.raises(SinkError, match="no column _event_time") as raised:
        sink.flush()
    assert not isinstance(raised.value, Backpressure)  # a mistake, not an outage
