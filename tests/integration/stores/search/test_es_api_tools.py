"""The requests Kibana's discover page and Grafana's Elasticsearch data source send for
a log search and a date histogram, written as those tools send them, against a real
store served on 127.0.0.1.

Kibana 8 sends discover's searches as ``_async_search`` with ``_source: false`` and
``fields``; Grafana sends one ``_msearch`` (NDJSON, header + body per panel query) with
``max_concurrent_shard_requests`` in the URL and epoch-millisecond ranges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch, helpers

from haeryu.stores.search.es_api.server import BackgroundServer
from support.search_api import LOG_MAPPING, log_docs, served_store

N = 240
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with served_store(tmp_path_factory.mktemp("search")) as server:
        load(server)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client


def load(server: BackgroundServer) -> None:
    es = Elasticsearch(server.url, request_timeout=120)
    es.indices.create(index="logs-app", **LOG_MAPPING)
    assert helpers.bulk(es, log_docs(N), refresh=True) == (N, [])
    es.close()


def kibana_time_filter(gte: str, lte: str) -> dict[str, Any]:
    return {
        "range": {"@timestamp": {"format": "strict_date_optional_time", "gte": gte, "lte": lte}}
    }


KIBANA_PARAMS = (
    "batched_reduce_size=64&ccs_minimize_roundtrips=true&wait_for_completion_timeout=200ms"
    "&keep_on_completion=false&keep_alive=60000ms&ignore_unavailable=true"
    "&track_total_hits=true&enable_fields_emulation=true&preference=1767225600000"
)


def test_kibana_discover_log_search(http: httpx.Client) -> None:
    body = {
        "sort": [
            {
                "@timestamp": {
                    "order": "desc",
                    "format": "strict_date_optional_time",
                    "unmapped_type": "boolean",
                }
            },
            {"_doc": {"order": "desc", "unmapped_type": "boolean"}},
        ],
        "track_total_hits": False,
        "fields": [
            {"field": "*", "include_unmapped": "true"},
            {"field": "@timestamp", "format": "strict_date_optional_time"},
        ],
        "size": 500,
        "version": True,
        "script_fields": {},
        "stored_fields": ["*"],
        "runtime_mappings": {},
        "_source": False,
        "query": {
            "bool": {
                "must": [],
                "filter": [
                    {"multi_match": {"type": "best_fields", "query": "온도", "lenient": True}},
                    kibana_time_filter("2026-01-01T01:00:00.000Z", "2026-01-01T01:59:59.999Z"),
                ],
                "should": [],
                "must_not": [],
            }
        },
        "highlight": {
            "pre_tags": ["@kibana-highlighted-field@"],
            "post_tags": ["@/kibana-highlighted-field@"],
            "fields": {"*": {}},
            "fragment_size": 2147483647,
        },
    }
    r = http.post(f"/logs-*/_async_search?{KIBANA_PARAMS}", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["is_running"] is False and answer["is_partial"] is False
    hits = answer["response"]["hits"]["hits"]
    # the "온도가 ..." lines (every third) of the second hour, newest first
    want = [i for i in range(119, 59, -1) if i % 3 == 0]
    assert [int(h["_id"]) for h in hits] == want
    first = hits[0]
    assert "_source" not in first  # Kibana asked for fields only
    assert first["fields"]["level"] == ["INFO"]
    assert first["fields"]["@timestamp"] == ["2026-01-01T01:57:00Z"]
    assert first["_version"] == 1
    marked = first["highlight"]["message"][0]
    assert "@kibana-highlighted-field@온도@/kibana-highlighted-field@" in marked


def test_kibana_discover_histogram(http: httpx.Client) -> None:
    body = {
        "size": 0,
        "track_total_hits": True,
        "aggs": {
            "2": {
                "date_histogram": {
                    "field": "@timestamp",
                    "fixed_interval": "30m",
                    "time_zone": "UTC",
                    "min_doc_count": 1,
                    "extended_bounds": {"min": START_MS, "max": START_MS + 4 * HOUR_MS - 1},
                }
            }
        },
        "query": {
            "bool": {
                "must": [],
                "filter": [
                    {"match_all": {}},
                    kibana_time_filter("2026-01-01T00:00:00.000Z", "2026-01-01T03:59:59.999Z"),
                ],
                "should": [],
                "must_not": [],
            }
        },
    }
    r = http.post(f"/logs-*/_async_search?{KIBANA_PARAMS}", json=body)
    assert r.status_code == 200, r.text
    response = r.json()["response"]
    assert response["hits"]["total"] == {"value": N, "relation": "eq"}
    buckets = response["aggregations"]["2"]["buckets"]
    assert [b["key"] for b in buckets] == [START_MS + i * HOUR_MS // 2 for i in range(8)]
    assert [b["doc_count"] for b in buckets] == [30] * 8


def grafana_msearch(*queries: dict[str, Any], index: str = "logs-*") -> bytes:
    header = {"search_type": "query_then_fetch", "ignore_unavailable": True, "index": index}
    lines = []
    for q in queries:
        lines += [json.dumps(header), json.dumps(q)]
    return ("\n".join(lines) + "\n").encode()


def grafana_range(gte: int, lte: int, query: str | None = None) -> dict[str, Any]:
    must: list[dict[str, Any]] = [
        {"range": {"@timestamp": {"format": "epoch_millis", "gte": gte, "lte": lte}}}
    ]
    if query is not None:
        must.append({"query_string": {"analyze_wildcard": True, "query": query}})
    return {"bool": {"filter": must}}


def test_grafana_logs_and_date_histogram_in_one_msearch(http: httpx.Client) -> None:
    end = START_MS + 2 * HOUR_MS - 1
    logs = {
        "docvalue_fields": ["@timestamp"],
        "query": grafana_range(START_MS, end, "level:ERROR AND 연결"),
        "script_fields": {},
        "size": 500,
        "sort": {
            "@timestamp": {"order": "desc", "unmapped_type": "boolean"},
            "_doc": {"order": "desc"},
        },
        "highlight": {
            "pre_tags": ["@HIGHLIGHT@"],
            "post_tags": ["@/HIGHLIGHT@"],
            "fragment_size": 2147483647,
            "fields": {"*": {}},
        },
        "fields": [{"field": "@timestamp", "format": "strict_date_optional_time_nanos"}],
    }
    metric = {
        "aggs": {
            "3": {
                "aggs": {
                    "2": {
                        "date_histogram": {
                            "extended_bounds": {"max": end, "min": START_MS},
                            "field": "@timestamp",
                            "fixed_interval": "1h",
                            "format": "epoch_millis",
                            "min_doc_count": 0,
                        }
                    }
                },
                "terms": {
                    "field": "host",
                    "min_doc_count": 1,
                    "order": {"_key": "desc"},
                    "size": 10,
                },
            }
        },
        "query": grafana_range(START_MS, end),
        "size": 0,
    }
    r = http.post(
        "/_msearch?max_concurrent_shard_requests=5",
        content=grafana_msearch(logs, metric),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    log_answer, metric_answer = r.json()["responses"]
    assert log_answer["status"] == 200 and metric_answer["status"] == 200
    # ERROR lines are i % 3 == 2: the "압력센서 ... 연결이 끊어졌습니다" template
    want = [i for i in range(119, -1, -1) if i % 3 == 2]
    assert [int(h["_id"]) for h in log_answer["hits"]["hits"]] == want
    hit = log_answer["hits"]["hits"][0]
    assert hit["fields"]["@timestamp"] == [hit["_source"]["@timestamp"]]
    assert "@HIGHLIGHT@연결@/HIGHLIGHT@" in hit["highlight"]["message"][0]
    hosts = metric_answer["aggregations"]["3"]["buckets"]
    assert [b["key"] for b in hosts] == ["h3", "h2", "h1", "h0"]
    for b in hosts:
        assert [x["doc_count"] for x in b["2"]["buckets"]] == [15, 15]
        assert [x["key"] for x in b["2"]["buckets"]] == [START_MS, START_MS + HOUR_MS]


def test_grafana_health_check_reads_the_banner_and_the_mapping(http: httpx.Client) -> None:
    banner = http.get("/").json()
    assert banner["version"]["build_flavor"] == "default"  # not serverless
    mapping = http.get("/logs-*/_mapping").json()
    assert mapping["logs-app"]["mappings"]["properties"]["@timestamp"]["type"] == "date"


def test_kibana_data_view_lists_fields_with_field_caps(http: httpx.Client) -> None:
    r = http.get("/logs-*/_field_caps?fields=*&include_unmapped=true")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["indices"] == ["logs-app"]
    caps = answer["fields"]
    assert caps["@timestamp"]["date"]["aggregatable"] is True
    assert caps["message"]["text"] == {
        "type": "text",
        "metadata_field": False,
        "searchable": True,
        "aggregatable": False,
    }
    assert caps["level"]["keyword"]["aggregatable"] is True
    only = http.post("/logs-*/_field_caps", json={"fields": ["lat*"]}).json()["fields"]
    assert list(only) == ["latency_ms"]
