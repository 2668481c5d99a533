"""A real SearchStore served through the Elasticsearch-compatible API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from haeryu.stores.search.es_api.server import BackgroundServer
from haeryu.stores.search.store import SearchStore

LOG_MAPPING = {
    "mappings": {
        "properties": {
            "@timestamp": {"type": "date"},
            "level": {"type": "keyword"},
            "host": {"type": "keyword"},
            "latency_ms": {"type": "long"},
            "message": {"type": "text", "analyzer": "nori"},
        }
    }
}
"""A log index as users write it for Elasticsearch with the nori plugin."""

LEVELS = ("INFO", "WARN", "ERROR")


def log_docs(n: int, index: str = "logs-app") -> list[dict[str, object]]:
    """``n`` log lines, one a minute from 2026-01-01T00:00Z, Korean and English mixed."""
    lines = (
        "센서 {i}의 온도가 기준을 초과했습니다",
        "request {i} served in {ms} ms",
        "압력센서 {i} 연결이 끊어졌습니다 connection lost",
    )
    return [
        {
            "_index": index,
            "_id": str(i),
            "@timestamp": f"2026-01-01T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            "level": LEVELS[i % 3],
            "host": f"h{i % 4}",
            "latency_ms": (i * 37) % 500,
            "message": lines[i % 3].format(i=i, ms=(i * 37) % 500),
        }
        for i in range(n)
    ]


@contextmanager
def served_store(root: Path, *, max_content_length: int = 1 << 20) -> Iterator[BackgroundServer]:
    """A fresh store under ``root``, served; the store closes after the server stops."""
    store = SearchStore(root, refresh_interval=None)
    try:
        with BackgroundServer(store, max_content_length=max_content_length) as server:
            yield server
    finally:
        store.close()
