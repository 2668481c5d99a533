"""InfluxSink against a real InfluxDB 1.x (Debian's influxd) started on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import polars as pl
import pytest

from haeryu import Pipeline
from haeryu.connectors.influx import InfluxSink
from haeryu.stream.sinks import Backpressure, SinkContext, SinkError
from haeryu.testing import Crashed, LocalCluster, crash_after_checkpoint_step, run_local
from support.influx_server import InfluxServer, influxd
from support.server_outage import Outage

pytestmark = pytest.mark.skipif(
    influxd() is None, reason="InfluxDB not installed (apt-get install influxdb)"
)


@pytest.fixture(scope="module")
def server() -> Iterator[InfluxServer]:
    srv = InfluxServer()
    srv.start()
    yield srv
    srv.close()


def readings(n: int) -> list[dict[str, object]]:
    # one point per reading: device tag + distinct event time
    return [{"device": f"d {i % 3}", "ts": 1_000 + i, "value": i / 2} for i in range(n)]


def pipeline(name: str, sink: InfluxSink) -> Pipeline:
    p = Pipeline(name)
    p.source("readings", format="json", schema={"device": str, "ts": int, "value": float}).to_sink(
        sink
    )
    return p


def test_points_come_back_as_written(server: InfluxServer) -> None:
    sink = InfluxSink(server.url, "roundtrip", "m,1 x", tags=("host",), time="t")
    sink.open(SinkContext("p", "w", 0))
    frame = pl.DataFrame(
        {
            "t": pl.Series([1, 2, 3]).cast(pl.Datetime("ns", "UTC")),
            "host": ["a b", "c,d=e", "f"],
            "n": [1, 2, None],
            "s": ['q"x\\', "a b,c=d", "é"],
            "v": [1.25, 2.5, 3.75],
            "ok": [True, False, None],
        }
    )
    sink.write(frame)
    sink.flush()
    got = server.query('SELECT "host", "n", "ok", "s", "v" FROM "m,1 x"', "roundtrip")
    assert got == [
        [1, "a b", 1, True, 'q"x\\', 1.25],
        [2, "c,d=e", 2, False, "a b,c=d", 2.5],
        [3, "f", None, None, "é", 3.75],
    ]
    sink.close()


def test_unreachable_server_at_start_says_what_to_do() -> None:
    sink = InfluxSink("http://127.0.0.1:1", "db", "m")
    with pytest.raises(SinkError, match=r"cannot reach InfluxDB .* start it or fix `url`"):
        sink.open(SinkContext("p", "w", 0))


def test_wrong_credentials_at_start_say_what_to_do() -> None:
    srv = InfluxServer(auth=True)
    srv.start()
    try:
        admin = {"u": "admin", "p": "right"}
        q = "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES"
        httpx.post(srv.url + "/query", data={"q": q}, timeout=10).raise_for_status()
        sink = InfluxSink(srv.url, "db", "m", username="admin", password="wrong")
        with pytest.raises(SinkError, match=r"refused the credentials .* fix username/password"):
            sink.open(SinkContext("p", "w", 0))
        good = InfluxSink(srv.url, "db", "m", username="admin", password="right", time="t")
        good.open(SinkContext("p", "w", 0))
        good.write(pl.DataFrame({"t": [5], "v": [1.0]}))
        good.flush()
        assert srv.query("SELECT v FROM m", "db", **admin) == [[5_000_000, 1.0]]
        good.close()
    finally:
        srv.close()


def test_a_replay_after_a_crash_overwrites_the_same_points(server: InfluxServer) -> None:
    inputs = {"readings": readings(300)}
    cluster = LocalCluster()

    def sink() -> InfluxSink:
        return InfluxSink(server.url, "replay", "r", tags=("device",), time="ts")

    with pytest.raises(Crashed):
        run_local(
            pipeline("replay", sink()),
            inputs,
            batch_size=25,
            partitions=2,
            cluster=cluster,
            crash=crash_after_checkpoint_step(1, checkpoint=4),
        )
    assert server.query("SELECT count(value) FROM r", "replay")[0][1] > 0
    run_local(pipeline("replay", sink()), inputs, batch_size=25, partitions=2, cluster=cluster)
    got = server.query('SELECT "device", "value" FROM r', "replay")
    want = [[(1_000 + i) * 1_000_000, f"d {i % 3}", i / 2] for i in range(300)]
    assert got == want  # the replayed points overwrote themselves: one per reading


def test_server_restart_mid_stream_loses_nothing(server: InfluxServer) -> None:
    sink = InfluxSink(server.url, "outage", "o", tags=("device",), time="ts")
    # the server stops as reading 1500 (ts) comes; back after three stalled flushes
    outage = Outage(server, column="ts", at=1_500, stalled=lambda: sink.outages >= 3)
    p = Pipeline("outage")
    schema = {"device": str, "ts": int, "value": float}
    p.source("readings", format="json", schema=schema).map_batches(outage).to_sink(sink)
    run_local(p, {"readings": readings(2_000)}, batch_size=20, partitions=2, cluster=LocalCluster())
    outage.finish()
    assert sink.outages >= 3
    got = server.query('SELECT "device", "value" FROM o', "outage")
    assert got == [[(1_000 + i) * 1_000_000, f"d {i % 3}", i / 2] for i in range(2_000)]


def test_a_full_buffer_refuses_frames_while_the_server_is_down(server: InfluxServer) -> None:
    sink = InfluxSink(server.url, "bounded", "b", time="t", batch_lines=50, max_buffer_rows=100)
    sink.open(SinkContext("p", "w", 0))

    def frame(start: int) -> pl.DataFrame:
        return pl.DataFrame({"t": range(start, start + 60), "v": range(start, start + 60)})

    server.stop()
    try:
        sink.write(frame(0))  # taken; the early send fails and the lines stay buffered
        sink.write(frame(60))  # taken: the buffer held 60 < 100
        with pytest.raises(Backpressure, match=r"InfluxDB unreachable.*holding 120 points"):
            sink.write(frame(120))  # not taken: the engine retries this same frame
    finally:
        server.start()
    sink.write(frame(120))
    sink.flush()
    got = server.query("SELECT v FROM b", "bounded")
    assert got == [[i * 1_000_000, i] for i in range(180)]
    sink.close()
