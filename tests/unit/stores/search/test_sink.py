"""SearchSink on the sink contract, driven directly with frames (no worker, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

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


def count(root: Path, query: dict[str, Any] | None = None) -> int:
    return SearchStore(root, writable=False, preload_analysis=False).count("orders", query)


def test_a_replay_after_a_crash_indexes_nothing_twice(tmp_path: Path) -> None:
    sink = SearchSink("orders", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(frame(range(0, 40)))
    sink.flush()
    sink.commit({("orders", 0): 40})
    sink.write(frame(range(40, 60)))  # buffered, never flushed: the crash loses it
    assert sink.store is not None
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
    positions = {"committed": {"orders|1": 5}, "pending": {"orders|1": 5}}
    assert SearchStore(tmp_path, writable=False).positions("orders") == {"p": positions}
    sink.close()


class CrashAfterCommit(SearchSink):
    """Dies (an exception, then no close) between the partition commits and step 3."""

    def _positions(self, committed: dict[str, int], pending: dict[str, int]) -> None:
        if committed == pending and self.store is not None:
            raise KeyboardInterrupt("crash")
        super()._positions(committed, pending)


def test_a_crash_between_the_commits_and_the_positions_upserts_on_replay(
    tmp_path: Path,
) -> None:
    sink = SearchSink("orders", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(frame(range(0, 10)))
    sink.flush()
    sink.close()
    crashing = CrashAfterCommit("orders", root=tmp_path)
    crashing.open(CONTEXT)
    crashing.write(frame(range(10, 30)))
    with pytest.raises(KeyboardInterrupt):
        crashing.flush()
    crashing.store = None  # dies: its writers go without another commit
    assert count(tmp_path) == 30  # the documents were committed, the positions not
    again = SearchSink("orders", root=tmp_path)
    again.open(CONTEXT)
    assert again._floor == {"orders|0": 10} and again._maybe == {"orders|0": 30}
    again.write(frame(range(10, 40)))
    again.flush()
    again.close()
    assert count(tmp_path) == 40
    ids = {"query": {"ids": {"values": [f"orders-0-{i}" for i in range(40)]}}}
    assert count(tmp_path, ids) == 40


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


def test_positions_of_partitions_not_read_now_are_kept(tmp_path: Path) -> None:
    sink = SearchSink("orders", root=tmp_path)
    sink.open(CONTEXT)
    sink.write(pl.concat([frame(range(0, 5), partition=0), frame(range(0, 7), partition=1)]))
    sink.flush()
    sink.commit({("orders", 0): 5, ("orders", 1): 7})
    sink.write(frame(range(5, 9), partition=0))
    sink.flush()
    sink.commit({("orders", 0): 9})  # partition 1 had nothing new
    sink.close()
    committed = SearchStore(tmp_path, writable=False).positions("orders")["p"]["committed"]
    assert committed == {"orders|0": 9, "orders|1": 7}


def test_a_crash_leaves_upserts_pending_until_a_checkpoint_covers_them(tmp_path: Path) -> None:
    # The crashed flush indexed partition 0 up to 30; the next flush reads only
    # partition 1, so partition 0's rows 10..29 must stay upserts for later replays.
    first = CrashAfterCommit("orders", root=tmp_path)
    first.open(CONTEXT)
    first.write(frame(range(0, 30)))
    with pytest.raises(KeyboardInterrupt):
        first.flush()
    first.store = None
    second = SearchSink("orders", root=tmp_path)
    second.open(CONTEXT)
    second.write(frame(range(0, 5), partition=1))
    second.flush()
    second.close()
    third = SearchSink("orders", root=tmp_path)
    third.open(CONTEXT)
    assert third._maybe["orders|0"] == 30
    third.write(frame(range(0, 35)))
    third.flush()
    third.close()
    assert count(tmp_path) == 40
