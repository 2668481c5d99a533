"""``haeryu bench search-api``: the search benchmark through the Elasticsearch REST API.

``haeryu search serve`` runs in its own process over a fresh directory; this process is
the client, as a log shipper and a dashboard would be.  The documents and the three
kinds of query are those of :mod:`haeryu.bench.search` (mixed Korean and English log
lines from a few thousand templates, ``message`` analyzed with ``nori``):

- bulk: NDJSON ``_bulk`` requests of ``batch`` documents sent one after another; the
  request bodies are encoded before the clock starts (a shipper has them ready), and
  kiwi's model is loaded by a first small request before it starts too.  Every bulk is
  acknowledged after its commit (the API's durable default).
- queries: ``POST /logs/_search`` round trips, p50/p99 in milliseconds.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from haeryu.bench.search import MAPPING, documents
from haeryu.bench.servers import SearchApiServer

Body = dict[str, Any]


def query_kinds(start: datetime, span: timedelta, seed: int = 3) -> dict[str, Callable[[], Body]]:
    """Makers of the three kinds of search body, over ``span`` of data from ``start``."""
    rng = random.Random(seed)

    def window(length: timedelta) -> dict[str, str]:
        low = start + max(span - length, timedelta(0)) * rng.random()
        return {"gte": low.isoformat(), "lt": (low + length).isoformat()}

    return {
        "term + time range": lambda: {
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"level": "ERROR"}},
                        {"range": {"@timestamp": window(timedelta(hours=1))}},
                    ]
                }
            },
            "sort": [{"@timestamp": "desc"}],
            "size": 20,
        },
        "full text": lambda: {
            "query": {
                "match": {"message": rng.choice(["온도", "센서", "결제", "만료", "timeout"])}
            },
            "size": 20,
        },
        "date histogram + terms": lambda: {
            "size": 0,
            "query": {"range": {"@timestamp": window(timedelta(hours=6))}},
            "aggs": {
                "t": {
                    "date_histogram": {"field": "@timestamp", "fixed_interval": "1m"},
                    "aggs": {"s": {"terms": {"field": "service", "size": 5}}},
                }
            },
        },
    }


def bulk_bodies(docs: list[dict[str, Any]], batch: int, index: str = "logs") -> list[bytes]:
    """The documents as NDJSON ``_bulk`` bodies of ``batch`` documents each."""
    action = json.dumps({"index": {"_index": index}}) + "\n"
    return [
        "".join(
            action + json.dumps(d, ensure_ascii=False) + "\n" for d in docs[i : i + batch]
        ).encode()
        for i in range(0, len(docs), batch)
    ]


@dataclass
class ApiBenchResult:
    """What one run measured."""

    docs: int
    bulk_seconds: float
    bulk_bytes: int
    server_cpu_seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.bulk_seconds if self.bulk_seconds else 0.0

    def percentile(self, kind: str, q: float) -> float:
        """Latency percentile of ``kind`` in milliseconds."""
        ordered = sorted(self.latencies[kind])
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def _post(client: httpx.Client, path: str, **kw: Any) -> dict[str, Any]:
    answer = client.post(path, **kw)
    if answer.status_code >= 300:
        raise RuntimeError(f"POST {path} answered {answer.status_code}: {answer.text[:500]}")
    body: dict[str, Any] = answer.json()
    return body


def run(
    docs: int = 1_000_000,
    n_templates: int = 3000,
    queries: int = 200,
    batch: int = 5_000,
    root: Path | None = None,
    mapping: Body | None = None,
) -> ApiBenchResult:
    """Bulk-index ``docs`` log lines through the API, then time ``queries`` of each kind.

    ``mapping`` replaces the benchmark's (``message`` with ``nori``), e.g. for a quick
    run without Korean analysis.
    """
    mapping = MAPPING if mapping is None else mapping
    start = datetime(2026, 1, 1, tzinfo=UTC)
    bodies = bulk_bodies(documents(docs, n_templates, start), batch)
    directory = Path(tempfile.mkdtemp(prefix="bench-search-api-")) if root is None else root
    # a busy machine can take minutes to start a niced Python process with its imports
    server = SearchApiServer(directory / "search", "--refresh-interval", "1").start(timeout=600)
    try:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for index in ("logs", "warmup"):  # the warm-up loads the analyzers
                client.put(f"/{index}", json=mapping).raise_for_status()
            warm = documents(1, n_templates, start - timedelta(days=1))
            _post(client, "/warmup/_bulk", content=bulk_bodies(warm, 1, "warmup")[0])
            cpu = server.cpu_seconds()
            began = time.perf_counter()
            for body in bodies:
                answer = _post(client, "/_bulk", content=body)
                if answer["errors"]:
                    raise RuntimeError(f"bulk items failed: {answer['items'][:3]}")
            _post(client, "/logs/_refresh")
            result = ApiBenchResult(
                docs,
                time.perf_counter() - began,
                sum(len(b) for b in bodies),
                server.cpu_seconds() - cpu,
            )
            span = timedelta(milliseconds=10 * docs)
            for kind, make in query_kinds(start, span).items():
                times, total = [], 0
                for _ in range(queries):
                    search = make()
                    t0 = time.perf_counter()
                    answer = _post(client, "/logs/_search", json=search)
                    times.append(time.perf_counter() - t0)
                    total += answer["hits"]["total"]["value"]
                result.latencies[kind] = times
                result.hits[kind] = total // max(queries, 1)
        return result
    finally:
        server.stop()
        if root is None:
            shutil.rmtree(directory, ignore_errors=True)


def report(result: ApiBenchResult) -> list[str]:
    """The figures as printable lines."""
    lines = [
        f"bulk-indexed {result.docs:,} docs ({result.bulk_bytes / 2**20:,.0f} MiB NDJSON) through "
        f"the REST API in {result.bulk_seconds:.1f} s: {result.docs_per_second:,.0f} docs/s; "
        f"server CPU {result.server_cpu_seconds:.1f} s "
        f"({result.docs / max(result.server_cpu_seconds, 1e-9):,.0f} docs per server CPU second)"
    ]
    for kind in result.latencies:
        lines.append(
            f"{kind:>24} over HTTP: p50 {result.percentile(kind, 0.5):6.2f} ms  "
            f"p99 {result.percentile(kind, 0.99):6.2f} ms  ({result.hits[kind]:,} hits/query)"
        )
    return lines
