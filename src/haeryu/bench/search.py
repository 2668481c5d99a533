"""``haeryu bench search``: indexing docs/s with Korean analysis, query latency p50/p99.

Log lines are generated from a few thousand templates (Korean, English and mixed) with
varying values (numbers, hosts, ids), like real logs.  The documents are indexed into a
fresh :class:`~haeryu.stores.search.SearchStore` (message analyzed with ``nori``), then
three kinds of query run repeatedly against it:

- ``term + time range``: ``level`` = ERROR within a one-hour window, newest first;
- ``full text``: a Korean word in the message (match), scored;
- ``date histogram + terms``: per-minute counts of a 6-hour window with a terms
  aggregation on ``service`` inside each bucket.
"""

from __future__ import annotations

import gc
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from haeryu.stores.search import SearchStore

KOREAN = [
    "온도가 기준치를 초과했습니다",
    "센서 연결이 끊어졌습니다",
    "사용자 로그인에 실패했습니다",
    "결제 요청을 처리했습니다",
    "디스크 사용량이 높습니다",
    "배치 작업이 완료되었습니다",
    "설비 진동이 감지되었습니다",
    "주문 정보를 저장했습니다",
    "인증 토큰이 만료되었습니다",
    "압력 센서 값이 비정상입니다",
]
ENGLISH = [
    "request completed",
    "connection refused by upstream",
    "cache miss for key",
    "retrying after timeout",
    "user session expired",
    "payment authorized",
    "disk usage above threshold",
    "worker started",
]
LEVELS = ["INFO"] * 14 + ["WARN"] * 4 + ["ERROR"] * 2
SERVICES = ["api", "payment", "factory", "auth", "batch", "gateway", "sensor", "order"]
MAPPING = {
    "mappings": {
        "properties": {
            "@timestamp": {"type": "date"},
            "level": {"type": "keyword"},
            "service": {"type": "keyword"},
            "host": {"type": "keyword"},
            "message": {"type": "text", "analyzer": "nori"},
            "latency_ms": {"type": "long"},
        }
    }
}


def templates(count: int, seed: int = 1) -> list[str]:
    """``count`` message templates with ``{n}``/``{id}``/``{ms}`` holes."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        korean = rng.choice(KOREAN)
        english = rng.choice(ENGLISH)
        shape = i % 3
        if shape == 0:
            out.append(f"[모듈{i}] {korean} device={{id}} value={{n}}")
        elif shape == 1:
            out.append(f"{english} (module-{i}) id={{id}} took {{ms}}ms")
        else:
            out.append(f"{korean} - {english} #{i} line {{n}} ({{ms}}ms)")
    return out


SPACING = timedelta(milliseconds=86)  # 1M documents span a day (two day partitions)


def documents(count: int, n_templates: int, start: datetime, seed: int = 2) -> list[dict[str, Any]]:
    """``count`` log documents, one per ``SPACING`` from ``start``."""
    rng = random.Random(seed)
    shapes = templates(n_templates)
    docs = []
    for i in range(count):
        ms = rng.randint(1, 2000)
        message = rng.choice(shapes).format(
            id=f"d-{rng.randint(1, 5000)}", n=rng.randint(0, 10**6), ms=ms
        )
        docs.append(
            {
                "@timestamp": (start + SPACING * i).isoformat(),
                "level": rng.choice(LEVELS),
                "service": rng.choice(SERVICES),
                "host": f"web-{rng.randint(1, 50)}",
                "message": message,
                "latency_ms": ms,
            }
        )
    return docs


@dataclass
class SearchBenchResult:
    """What one run measured."""

    docs: int
    index_seconds: float
    index_cpu_seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.index_seconds if self.index_seconds else 0.0

    @property
    def docs_per_cpu_second(self) -> float:
        """Documents per CPU second of this process (all its threads): a figure that a
        busy shared machine distorts less than wall time."""
        return self.docs / self.index_cpu_seconds if self.index_cpu_seconds else 0.0

    def percentile(self, kind: str, q: float) -> float:
        """Latency percentile of ``kind`` in milliseconds."""
        ordered = sorted(self.latencies[kind])
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def run(
    docs: int = 1_000_000,
    n_templates: int = 3000,
    queries: int = 200,
    batch: int = 10_000,
    root: Path | None = None,
    writer_threads: int = 1,
) -> SearchBenchResult:
    """Index ``docs`` generated log lines, then time ``queries`` of each kind."""
    start = datetime(2026, 1, 1, 6, tzinfo=UTC)
    data = documents(docs, n_templates, start)
    directory = Path(tempfile.mkdtemp(prefix="bench-search-")) if root is None else root
    store = SearchStore(
        directory, refresh_interval=None, writer_heap=200_000_000, writer_threads=writer_threads
    )
    try:
        store.create_index("logs", MAPPING)
        began = time.perf_counter()
        cpu = time.process_time()
        for offset in range(0, docs, batch):
            store.index_documents(
                "logs", [(None, d) for d in data[offset : offset + batch]], "create"
            )
        store.refresh()
        result = SearchBenchResult(docs, time.perf_counter() - began, time.process_time() - cpu)
        # The generated documents are a benchmark artifact: drop them and freeze what
        # is left, so the collector's full passes over millions of dicts do not land
        # in the query latencies (a serving process does not hold them).
        del data
        gc.collect()
        gc.freeze()
        span = SPACING * docs
        rng = random.Random(3)

        def window(length: timedelta) -> tuple[str, str]:
            free = max(span - length, timedelta(0))
            low = start + free * rng.random()
            return low.isoformat(), (low + length).isoformat()

        kinds = {
            "term + time range": lambda: {
                "query": {
                    "bool": {
                        "filter": [
                            {"term": {"level": "ERROR"}},
                            {
                                "range": {
                                    "@timestamp": dict(
                                        zip(("gte", "lt"), window(timedelta(hours=1)), strict=True)
                                    )
                                }
                            },
                        ]
                    }
                },
                "sort": [{"@timestamp": "desc"}],
                "size": 20,
            },
            "full text": lambda: {
                "query": {
                    "match": {
                        "message": rng.choice(["온도", "센서", "결제", "만료", "timeout", "진동"])
                    }
                },
                "size": 20,
            },
            "date histogram + terms": lambda: {
                "size": 0,
                "query": {
                    "range": {
                        "@timestamp": dict(
                            zip(("gte", "lt"), window(timedelta(hours=6)), strict=True)
                        )
                    }
                },
                "aggs": {
                    "t": {
                        "date_histogram": {"field": "@timestamp", "fixed_interval": "1m"},
                        "aggs": {"s": {"terms": {"field": "service", "size": 5}}},
                    }
                },
            },
        }
        for kind, make in kinds.items():
            times = []
            total = 0
            for _ in range(queries):
                body = make()
                t0 = time.perf_counter()
                answer = store.search("logs", body)
                times.append(time.perf_counter() - t0)
                total += answer["hits"]["total"]["value"]
            result.latencies[kind] = times
            result.hits[kind] = total // max(queries, 1)
        return result
    finally:
        gc.unfreeze()
        store.close()
        if root is None:
            shutil.rmtree(directory, ignore_errors=True)


def report(result: SearchBenchResult) -> list[str]:
    """The figures as printable lines."""
    lines = [
        f"indexed {result.docs:,} docs in {result.index_seconds:.1f} s: "
        f"{result.docs_per_second:,.0f} docs/s wall, "
        f"{result.docs_per_cpu_second:,.0f} docs per CPU second (nori analysis)"
    ]
    for kind in result.latencies:
        lines.append(
            f"{kind:>24}: p50 {result.percentile(kind, 0.5):6.2f} ms  "
            f"p99 {result.percentile(kind, 0.99):6.2f} ms  ({result.hits[kind]:,} hits/query)"
        )
    return lines
