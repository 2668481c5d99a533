"""ElasticsearchSink against haeryu's own Elasticsearch-compatible API on 127.0.0.1.

No Elasticsearch can be installed here; the API speaks the same ``_bulk`` protocol.
The server holds its documents in a fake of the search store's contract, so a restart
of the HTTP server keeps what was acknowledged, as a cluster's restart does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from haeryu import Pipeline
from haeryu.connectors.elasticsearch import ElasticsearchSink
from haeryu.stores.search.errors import SearchError
from haeryu.stores.search.es_api.server import BackgroundServer
from haeryu.stream.sinks import Backpressure, SinkContext, SinkError
from haeryu.testing import Crashed, LocalCluster, crash_after_checkpoint_step, run_local
from support.fake_search_store import FakeSearchStore
from support.search_server_process import SearchServerProcess
from support.server_outage import Outage


class ThrottledStore(FakeSearchStore):
    """Answers 429 for every other document of the first ``times`` bulk calls."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times
        self.calls = 0

    def index_documents(
        self, index: str, docs: list[tuple[str | None, dict[str, Any]]], op_type: str = "index"
    ) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls > self.times:
            return super().index_documents(index, docs, op_type)
        out: list[dict[str, Any]] = []
        for i, doc in enumerate(docs):
            if i % 2:
                reason = "rejected execution (queue full)"
                error = {"type": "es_rejected_execution_exception", "reason": reason}
                out.append({"_index": index, "_id": doc[0], "status": 429, "error": error})
            else:
                out.extend(super().index_documents(index, [doc], op_type))
        return out


@pytest.fixture
def store() -> FakeSearchStore:
    return FakeSearchStore()


@pytest.fixture
def server(store: FakeSearchStore) -> Iterator[BackgroundServer]:
    with BackgroundServer(store) as srv:
        yield srv


def readings(n: int) -> list[dict[str, object]]:
    return [{"device": f"d{i % 3}", "seq": i, "value": i / 2} for i in range(n)]


def pipeline(name: str, sink: ElasticsearchSink, step: Any = None) -> Pipeline:
    p = Pipeline(name)
    stream = p.source("readings", format="json", schema={"device": str, "seq": int, "value": float})
    if step is not None:
        stream = stream.map_batches(step)
    stream.to_sink(sink)
    return p


def stored(store: FakeSearchStore, index: str) -> dict[str, dict[str, Any]]:
    return store.written.get(index, {})


def test_documents_come_back_with_their_ids_and_fields(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    mapping = {"mappings": {"properties": {"device": {"type": "keyword"}}}}
    sink = ElasticsearchSink(server.url, "roundtrip", id="seq", mapping=mapping)
    sink.open(SinkContext("p", "w", 0))
    sink.write(pl.DataFrame({"seq": [1, 2], "device": ["a", "b"], "_offset": [5, 6]}))
    sink.flush()
    assert store.mappings["roundtrip"] == mapping["mappings"]
    assert stored(store, "roundtrip") == {
        "1": {"seq": 1, "device": "a"},
        "2": {"seq": 2, "device": "b"},
    }
    assert sink.docs_written == 2
    sink.close()


def test_unreachable_cluster_at_start_says_what_to_do() -> None:
    sink = ElasticsearchSink("http://127.0.0.1:1", "logs")
    with pytest.raises(SinkError, match=r"cannot reach Elasticsearch .* start it or fix `url`"):
        sink.open(SinkContext("p", "w", 0))


def test_a_replay_after_a_crash_overwrites_the_same_documents(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    inputs = {"readings": readings(300)}
    cluster = LocalCluster()
    with pytest.raises(Crashed):
        run_local(
            pipeline("replay", ElasticsearchSink(server.url, "replay")),
            inputs,
            batch_size=25,
            partitions=2,
            cluster=cluster,
            crash=crash_after_checkpoint_step(1, checkpoint=4),
        )
    written_before = len(stored(store, "replay"))
    assert written_before > 0
    run_local(
        pipeline("replay", ElasticsearchSink(server.url, "replay")),
        inputs,
        batch_size=25,
        partitions=2,
        cluster=cluster,
    )
    docs = stored(store, "replay")
    # one document per reading, ids from topic-partition-offset: the replay overwrote
    assert sorted(d["seq"] for d in docs.values()) == list(range(300))
    assert all(k.startswith("readings-") for k in docs)


def test_server_restart_mid_stream_loses_nothing_and_duplicates_nothing(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    sink = ElasticsearchSink(server.url, "outage", batch_docs=50)
    # the server stops as reading 1500 comes; it is back after three stalled flushes
    outage = Outage(server, column="seq", at=1_500, stalled=lambda: sink.outages >= 3)
    run_local(
        pipeline("outage", sink, outage),
        {"readings": readings(2_000)},
        batch_size=20,
        partitions=2,
        cluster=LocalCluster(),
    )
    outage.finish()
    assert sink.outages >= 3
    docs = stored(store, "outage")
    assert sorted(d["seq"] for d in docs.values()) == list(range(2_000))
    assert len(docs) == 2_000


def test_items_answered_429_are_sent_again_alone() -> None:
    store = ThrottledStore(times=2)
    with BackgroundServer(store) as srv:
        sink = ElasticsearchSink(srv.url, "throttled", id="seq")
        sink.open(SinkContext("p", "w", 0))
        sink.write(pl.DataFrame({"seq": range(8)}))
        with pytest.raises(
            Backpressure, match=r"4 documents not taken, e\.g\. 429 es_rejected"
        ) as first:
            sink.flush()
        assert first.value.retry_after == pytest.approx(0.05)
        with pytest.raises(
            Backpressure, match=r"2 documents not taken, e\.g\. 429 es_rejected"
        ) as second:
            sink.flush()
        assert second.value.retry_after == pytest.approx(0.1)  # backs off further
        sink.flush()
        assert sorted(int(k) for k in store.written["throttled"]) == list(range(8))
        assert sink.docs_written == 8  # every document acknowledged once
        sink.close()


def test_a_full_buffer_refuses_frames_while_the_cluster_is_down(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    sink = ElasticsearchSink(server.url, "bounded", id="n", batch_docs=50, max_buffer_docs=100)
    sink.open(SinkContext("p", "w", 0))

    def frame(start: int) -> pl.DataFrame:
        return pl.DataFrame({"n": range(start, start + 60)})

    server.stop()
    try:
        sink.write(frame(0))  # taken; the early send fails and the documents stay buffered
        sink.write(frame(60))  # taken: the buffer held 60 < 100
        with pytest.raises(Backpressure, match=r"cannot take documents.*holding 120"):
            sink.write(frame(120))  # not taken: the engine retries this same frame
    finally:
        server.start()
    sink.write(frame(120))
    sink.flush()
    assert sorted(int(k) for k in stored(store, "bounded")) == list(range(180))
    sink.close()


def test_a_rejected_document_fails_the_checkpoint_with_the_reason(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    sink = ElasticsearchSink(server.url, "strict", id="n")
    sink.open(SinkContext("p", "w", 0))
    sink.write(pl.DataFrame({"n": [1, 2, 3], "bad": [None, True, None]}))
    with pytest.raises(
        SinkError,
        match=r"rejected 1 documents, e.g. \[2\] 400 mapper_parsing_exception: failed to parse",
    ):
        sink.flush()
    # the good documents are in; the checkpoint failed, so a replay brings the bad one back
    assert sorted(stored(store, "strict")) == ["1", "3"]
    lenient = ElasticsearchSink(server.url, "lenient", id="n", on_rejected="log")
    lenient.open(SinkContext("p", "w", 0))
    lenient.write(pl.DataFrame({"n": [1, 2], "bad": [True, None]}))
    lenient.flush()
    assert (lenient.docs_rejected, sorted(stored(store, "lenient"))) == (1, ["2"])
    sink.close()
    lenient.close()


def test_kafka_timestamp_becomes_at_timestamp(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    run_local(
        pipeline("ts", ElasticsearchSink(server.url, "ts")),
        {"readings": readings(3)},
        batch_size=10,
        partitions=1,
        cluster=LocalCluster(),
    )
    answer = httpx.post(f"{server.url}/ts/_refresh")
    assert answer.status_code == 200
    docs = list(stored(store, "ts").values())
    assert len(docs) == 3
    # an ISO-8601 time with its zone, the form Elasticsearch's date fields parse
    assert all(datetime.fromisoformat(d["@timestamp"]).tzinfo is not None for d in docs)


def test_search_server_killed_mid_stream_keeps_every_document_once(tmp_path: Path) -> None:
    """The real store behind ``haeryu search serve``, killed with SIGKILL mid-stream."""
    server = SearchServerProcess(tmp_path / "search").start()
    try:
        sink = ElasticsearchSink(server.url, "killed", batch_docs=100)
        outage = Outage(server, column="seq", at=1_200, stalled=lambda: sink.outages >= 2)
        run_local(
            pipeline("killed", sink, outage),
            {"readings": readings(2_000)},
            batch_size=50,
            partitions=2,
            cluster=LocalCluster(),
        )
        outage.finish()
        assert server.starts == 2 and sink.outages >= 2
        r = httpx.post(f"{server.url}/killed/_search", json={"size": 5000}, timeout=30)
        seqs = sorted(h["_source"]["seq"] for h in r.json()["hits"]["hits"])
        # every acknowledged document survived the kill; the replay overwrote, not added
        assert seqs == list(range(2_000))
        assert r.json()["hits"]["total"]["value"] == 2_000
    finally:
        server.stop()


def test_a_503_answer_backs_off_and_the_next_flush_sends_everything(
    server: BackgroundServer, store: FakeSearchStore
) -> None:
    sink = ElasticsearchSink(server.url, "unavailable", id="n")
    sink.open(SinkContext("p", "w", 0))
    sink.write(pl.DataFrame({"n": [1, 2]}))
    store.fail_next = SearchError(
        503, "unavailable_shards_exception", "primary shard is not active"
    )
    why = r"2 documents not taken, e.g. 503 unavailable_shards_exception: primary shard"
    with pytest.raises(Backpressure, match=why):
        sink.flush()
    assert stored(store, "unavailable") == {}
    sink.flush()
    assert sorted(stored(store, "unavailable")) == ["1", "2"]
    sink.close()
