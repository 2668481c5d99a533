"""SearchSink on the sink contract, driven directly with frames (no worker, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from haeryu.stores.search import SearchSink, SearchStore
from haeryu.stream.sinks import SinkContext

CONTEXT = SinkContext(pipeline="p", worker="w", node=0)


def frame(offsets: range, partition: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "msg": [f"주문 {i} 처리했습니다" for i in offsets],
            "_topic": ["orders"] * len(offsets),
            "_partition": [partition] * len(offsets),
            "_offset": list(offsets),
            "_event_time": [1_767_225_600_000 + i * 3_600_000 for i in offsets],
        }
    )


def count(root: Path, query: dict[str, object] | None = None) -> int:
    return SearchStore(root, writable=False, preload_analysis=False).count("orders", query)


def test_a_replay_after_a_crash_indexes_nothing_twice(tmp_path: Path) -> None:
    sink = SearchSink("orders", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(frame(range(0, 40)))
    sink.flush()
    sink.commit({("orders", 0): 40})
    sink.write(frame(range(40, 60)))  # buffered, never flushed: the crash loses it
    sink.store._closed.set()
    sink.store = None  # the process dies without closing anything

    again = SearchSink("orders", root=tmp_path)
    again.open(CONTEXT)
    again.write(frame(range(20, 60)))  # the worker replays from an older offset
    again.flush()
    again.close()
    assert count(tmp_path) == 60
    assert count(tmp_path, {"query": {"match": {"msg": "주문"}}}) == 60
    hit = SearchStore(tmp_path, writable=False).search(
        "orders", {"query": {"ids": {"values": ["orders-0-7"]}}}
    )
    source = hit["hits"]["hits"][0]["_source"]
    assert source["@timestamp"] == datetime.fromtimestamp(1_767_225_600 + 7 * 3600, UTC).isoformat()
    assert "_offset" not in source


def test_positions_written_after_the_documents_cover_what_was_flushed(tmp_path: Path) -> None:
    sink = SearchSink("orders", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(frame(range(0, 5), partition=1))
    sink.flush()
    assert SearchStore(tmp_path, writable=False).positions("orders") == {"p": {"orders|1": 5}}
    sink.close()


def test_a_user_id_column_makes_updates_overwrite(tmp_path: Path) -> None:
    sink = SearchSink("orders", id="order_id", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(pl.DataFrame({"order_id": ["a", "b"], "status": ["new", "new"]}))
    sink.flush()
    sink.write(pl.DataFrame({"order_id": ["a"], "status": ["paid"]}))
    sink.flush()
    sink.close()
    assert count(tmp_path) == 2
    assert count(tmp_path, {"query": {"term": {"status.keyword": "paid"}}}) == 1


def test_retention_drops_whole_day_partitions(tmp_path: Path) -> None:
    sink = SearchSink("orders", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(frame(range(0, 48)))  # one an hour: two days
    sink.flush()
    store = sink.store
    assert store is not None
    assert store.drop_partitions("orders", datetime(2026, 1, 2, tzinfo=UTC)) == ["2026-01-01"]
    sink.close()
    assert count(tmp_path) == 24
