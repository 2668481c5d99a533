"""PostgresSink against a real PostgreSQL (Debian's) started on a free port.

One server per module; every test writes its own table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import polars as pl
import psycopg
import pytest

from haeryu import Pipeline
from haeryu.connectors.postgres import PostgresSink
from haeryu.stream import col, windows
from haeryu.stream.kafka.worker import Worker, WorkerConfig
from haeryu.stream.sinks import Backpressure, PlanError, SinkContext, SinkError
from haeryu.testing import Crashed, LocalCluster, crash_after_checkpoint_step, run_local
from support.kafka import create_topic, produce
from support.postgres_server import PostgresServer, postgres_bin
from support.server_outage import Outage

pytestmark = pytest.mark.skipif(
    postgres_bin() is None, reason="PostgreSQL not installed (apt-get install postgresql)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    srv = PostgresServer()
    srv.start()
    yield srv
    srv.close()


def rows(server: PostgresServer, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(server.dsn) as conn:
        return conn.execute(query).fetchall()


def pipeline(name: str, sink: PostgresSink) -> Pipeline:
    p = Pipeline(name)
    p.source("readings", format="json", schema={"id": int, "device": str, "value": float}).to_sink(
        sink
    )
    return p


def readings(n: int) -> list[dict[str, object]]:
    return [{"id": i, "device": f"d{i % 7}", "value": i / 4} for i in range(n)]


def test_types_round_trip_and_upsert_keeps_the_last_row(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "typed", key=("id",))
    sink.open(SinkContext("types", "w", 0))
    frame = pl.DataFrame(
        {
            "id": [1, 2, 2],
            "name": ['a,b "q"', "", None],
            "small": pl.Series([1, 2, 3], dtype=pl.Int16),
            "flag": [True, None, False],
            "blob": [b"\x00\x01", None, b"z"],
            "at": pl.Series([1_000, 2_000, 3_000]).cast(pl.Datetime("ms", "UTC")),
            "tags": [["x"], [], None],
        }
    )
    sink.write(frame)
    sink.flush()
    got = rows(
        server,
        "SELECT id, name, small, flag, blob, extract(epoch from at), tags FROM typed ORDER BY id",
    )
    assert got[0][:5] == (1, 'a,b "q"', 1, True, b"\x00\x01")
    assert float(got[0][5]) == 1.0  # type: ignore[arg-type]
    assert got[0][6] == ["x"]
    # id 2 came twice in one batch: the last row wins, and its nulls are NULL
    assert got[1][:5] == (2, None, 3, False, b"z") and got[1][6] is None
    types = dict(
        rows(
            server,
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name='typed'",
        )
    )
    assert types == {
        "id": "bigint",
        "name": "text",
        "small": "smallint",
        "flag": "boolean",
        "blob": "bytea",
        "at": "timestamp with time zone",
        "tags": "jsonb",
    }
    sink.close()


def test_empty_string_stays_empty_and_null_stays_null(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "texts")
    sink.open(SinkContext("texts", "w", 0))
    sink.write(pl.DataFrame({"s": ["", None, "x"]}))
    sink.flush()
    assert rows(server, "SELECT s IS NULL, s FROM texts") == [
        (False, ""),
        (True, None),
        (False, "x"),
    ]
    sink.close()


def test_a_column_without_postgres_type_stops_with_plan_error(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "objects")
    sink.open(SinkContext("objects", "w", 0))
    frame = pl.DataFrame({"id": [1], "o": pl.Series([object()], dtype=pl.Object)})
    with pytest.raises(PlanError, match="column 'o' has type Object"):
        sink.write(frame)
    # the row is not half-written: no table was created
    assert rows(server, "SELECT count(*) FROM pg_tables WHERE tablename = 'objects'") == [(0,)]


def test_wrong_password_and_unreachable_server_say_what_to_do(server: PostgresServer) -> None:
    bad = PostgresSink(server.dsn_as("haeryu", "wrong"), "never")
    with pytest.raises(SinkError, match="check user and password"):
        bad.open(SinkContext("auth", "w", 0))
    nowhere = PostgresSink(
        "host=127.0.0.1 port=1 user=x dbname=postgres connect_timeout=1", "never"
    )
    with pytest.raises(SinkError, match="start PostgreSQL or fix host/port"):
        nowhere.open(SinkContext("auth", "w", 0))


def test_a_crash_between_flush_and_offset_commit_writes_nothing_twice(
    server: PostgresServer,
) -> None:
    inputs = {"readings": readings(200)}
    cluster = LocalCluster()
    first = PostgresSink(server.dsn, "crashy")
    # step 1 (sink flush + positions) went through, the offsets were never committed
    with pytest.raises(Crashed):
        run_local(
            pipeline("crashy", first),
            inputs,
            batch_size=20,
            partitions=2,
            cluster=cluster,
            crash=crash_after_checkpoint_step(1, checkpoint=3),
        )
    written_before = rows(server, "SELECT count(*) FROM crashy")[0][0]
    assert written_before > 0
    second = PostgresSink(server.dsn, "crashy")  # a restarted worker's sink
    run_local(pipeline("crashy", second), inputs, batch_size=20, partitions=2, cluster=cluster)
    assert second.rows_skipped > 0  # the replay really offered rows already stored
    ids = [r[0] for r in rows(server, "SELECT id FROM crashy ORDER BY id")]
    assert ids == list(range(200))  # each once: none lost, none twice
    positions = rows(
        server,
        "SELECT partition, next_offset FROM haeryu_positions WHERE pipeline = 'crashy' ORDER BY 1",
    )
    assert positions == [(0, 100), (1, 100)]


def test_server_restart_mid_stream_loses_and_repeats_nothing(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "outage", batch_rows=10**9)
    # the server stops as the row with id 500 comes; it is back once the checkpoint has
    # waited on the sink three times
    outage = Outage(server, column="id", at=500, stalled=lambda: sink.outages >= 3)
    p = Pipeline("outage")
    schema = {"id": int, "device": str, "value": float}
    p.source("readings", format="json", schema=schema).map_batches(outage).to_sink(sink)
    run_local(p, {"readings": readings(2_000)}, batch_size=20, partitions=2, cluster=LocalCluster())
    outage.finish()
    assert sink.outages >= 3
    ids = [r[0] for r in rows(server, "SELECT id FROM outage ORDER BY id")]
    assert ids == list(range(2_000))


def test_a_full_buffer_refuses_frames_while_the_server_is_down(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "bounded", batch_rows=50, max_buffer_rows=100)
    sink.open(SinkContext("bounded", "w", 0))

    def frame(start: int) -> pl.DataFrame:
        return pl.DataFrame({"id": range(start, start + 60)})

    server.stop()
    try:
        sink.write(frame(0))  # taken; the early write fails and the rows stay buffered
        sink.write(frame(60))  # taken: the buffer held 60 < 100
        with pytest.raises(Backpressure, match=r"PostgreSQL unreachable.*holding 120 rows"):
            sink.write(frame(120))  # not taken: the engine retries this same frame
    finally:
        server.start()
    sink.write(frame(120))  # the server is back: the buffer drains, then the frame goes in
    sink.flush()
    assert rows(server, "SELECT count(*), count(DISTINCT id) FROM bounded") == [(180, 180)]
    sink.close()


def test_a_column_that_appears_later_stops_with_plan_error(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "drift")
    sink.open(SinkContext("drift", "w", 0))
    sink.write(pl.DataFrame({"a": [1]}))
    with pytest.raises(PlanError, match=r"columns \['b'\] appeared after table 'drift'"):
        sink.write(pl.DataFrame({"a": [2], "b": ["x"]}))
    sink.flush()
    assert rows(server, "SELECT a FROM drift") == [(1,)]  # the refused frame was not half-written
    sink.close()


def test_a_frame_of_only_engine_columns_stops_with_plan_error(server: PostgresServer) -> None:
    sink = PostgresSink(server.dsn, "nothing")
    sink.open(SinkContext("nothing", "w", 0))
    with pytest.raises(PlanError, match="no columns to write into 'nothing'"):
        sink.write(pl.DataFrame({"_key": ["k"], "_offset": [0]}))


def test_a_worker_rewinds_through_a_long_outage_and_resumes_by_itself(
    server: PostgresServer, broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Over haeryu's broker: the outage outlasts the checkpoint deadline, so the worker
    rewinds to its last checkpoint and replays; the sink skips what it already holds or
    stored, and everything arrives once when PostgreSQL is back."""
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "readings", 2)
    n = 3_000
    produce(bootstrap, "readings", readings(n))
    sink = PostgresSink(server.dsn, "worker_outage")
    # about 3 s of back-off before the restart: past the 1 s checkpoint deadline
    outage = Outage(server, column="id", at=1_000, stalled=lambda: sink.outages >= 6)
    p = Pipeline("worker-outage", checkpoint_every="100ms", max_batch=200)
    schema = {"id": int, "device": str, "value": float}
    p.source("readings", format="json", schema=schema).map_batches(outage).to_sink(sink)
    worker = Worker(p, WorkerConfig(bootstrap, checkpoint_timeout_ms=1_000))
    deadline = time.monotonic() + 90

    def done() -> bool:
        return sink.rows_written >= n or time.monotonic() > deadline

    worker.run(should_stop=done)  # the worker's own loop: it recovers by itself
    outage.finish()
    assert sink.rows_written == n, f"only {sink.rows_written} rows written in time"
    assert "rewinding to the last checkpoint" in caplog.text  # the long-outage path ran
    ids = [r[0] for r in rows(server, "SELECT id FROM worker_outage ORDER BY id")]
    assert ids == list(range(n))


def test_two_sinks_holding_the_same_rows_store_them_once(server: PostgresServer) -> None:
    """After a rebalance the old and the new owner of a partition can both hold rows of
    the same interval; the locked positions let only the first write them."""
    old, new = (PostgresSink(server.dsn, "handover") for _ in range(2))
    for sink in (old, new):
        sink.open(SinkContext("handover", "w", 0))
    frame = pl.DataFrame(
        {
            "id": range(10),
            "_topic": ["in"] * 10,
            "_partition": pl.Series([3] * 10, dtype=pl.Int32),
            "_offset": range(100, 110),
        }
    )
    old.write(frame)
    new.write(frame.slice(5))  # the new owner replays from offset 105
    new.write(
        pl.DataFrame(
            {
                "id": [10],
                "_topic": ["in"],
                "_partition": pl.Series([3], dtype=pl.Int32),
                "_offset": [110],
            }
        )
    )
    old.flush()
    new.flush()
    assert rows(server, "SELECT id FROM handover ORDER BY id") == [(i,) for i in range(11)]
    assert new.rows_skipped == 5  # its copies of 105..109 were already stored
    assert rows(server, "SELECT next_offset FROM haeryu_positions WHERE pipeline = 'handover'") == [
        (111,)
    ]


def test_behind_a_repartition_a_crash_writes_nothing_twice(server: PostgresServer) -> None:
    """After key_by the rows come from repartition chunks: _offset is the chunk's, and
    every row of a chunk arrives in one frame, so positions work the same way."""
    table = "crashy_rp"

    def keyed(sink: PostgresSink) -> Pipeline:
        p = Pipeline(table)
        schema = {"id": int, "device": str, "value": float}
        p.source("readings", format="json", schema=schema).key_by("device").to_sink(sink)
        return p

    inputs = {"readings": readings(300)}
    cluster = LocalCluster()
    with pytest.raises(Crashed):
        run_local(
            keyed(PostgresSink(server.dsn, table)),
            inputs,
            batch_size=20,
            partitions=2,
            cluster=cluster,
            crash=crash_after_checkpoint_step(1, checkpoint=4),
        )
    second = PostgresSink(server.dsn, table)
    run_local(keyed(second), inputs, batch_size=20, partitions=2, cluster=cluster)
    assert second.rows_skipped > 0  # the replay offered stored rows again
    ids = [r[0] for r in rows(server, f"SELECT id FROM {table} ORDER BY id")]
    assert ids == list(range(300))


def test_window_results_upserted_by_key_stay_one_row_per_window(server: PostgresServer) -> None:
    """Window results carry no input offset, so positions cannot drop a replay: with
    key= the replayed results overwrite themselves instead."""

    def windowed(sink: PostgresSink) -> Pipeline:
        p = Pipeline("windows")
        schema = {"device": str, "value": int, "ts": int}
        (
            p.source("readings", format="json", schema=schema, timestamp="ts")
            .key_by("device")
            .window(windows.tumbling("10s"))
            .agg(total=col("value").sum())
            .to_sink(sink)
        )
        return p

    inputs = {"readings": [{"device": f"d{i % 3}", "value": i, "ts": i * 500} for i in range(240)]}
    cluster = LocalCluster()
    key = ("device", "window_start")
    with pytest.raises(Crashed):
        run_local(
            windowed(PostgresSink(server.dsn, "windows", key=key)),
            inputs,
            batch_size=20,
            partitions=2,
            cluster=cluster,
            crash=crash_after_checkpoint_step(1, checkpoint=6),
        )
    run_local(
        windowed(PostgresSink(server.dsn, "windows", key=key)),
        inputs,
        batch_size=20,
        partitions=2,
        cluster=cluster,
    )
    got = rows(
        server,
        "SELECT device, extract(epoch from window_start)::int, total FROM windows ORDER BY 1, 2",
    )
    want = (
        pl.DataFrame(inputs["readings"])
        .with_columns(start=pl.col("ts") // 10_000 * 10)
        .group_by("device", "start")
        .agg(pl.col("value").sum())
        .sort("device", "start")
        .rows()
    )
    assert got == want
