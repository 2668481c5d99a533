"""The official ``elasticsearch`` and ``opensearch-py`` clients, as users run them,
against a real search store served through the API on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError, helpers
from opensearchpy import OpenSearch
from opensearchpy import helpers as os_helpers
from opensearchpy.exceptions import RequestError

from haeryu.stores.search.es_api.server import BackgroundServer
from support.search_api import LOG_MAPPING, log_docs, served_store

N = 240  # four hours of one line a minute


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    with served_store(tmp_path_factory.mktemp("search")) as srv:
        yield srv


@pytest.fixture(scope="module")
def es(server: BackgroundServer) -> Iterator[Elasticsearch]:
    # the first Korean analysis loads kiwi's model (seconds): a generous timeout
    client = Elasticsearch(server.url, request_timeout=120)
    client.indices.create(index="logs-app", **LOG_MAPPING)
    ok, errors = helpers.bulk(client, log_docs(N), refresh=True, chunk_size=100)
    assert (ok, errors) == (N, [])
    yield client
    client.close()


def test_info_and_index_admin(es: Elasticsearch) -> None:
    info = es.info()
    assert info["version"]["number"].startswith("8.")
    assert es.indices.exists(index="logs-app")
    assert not es.indices.exists(index="nothing")
    mapping = es.indices.get_mapping(index="logs-*")
    assert mapping["logs-app"]["mappings"]["properties"]["message"]["analyzer"] == "nori"
    rows = es.cat.indices(index="logs-*", format="json")
    assert [(r["index"], r["docs.count"]) for r in rows] == [("logs-app", str(N))]


def test_korean_full_text_with_highlight(es: Elasticsearch) -> None:
    r = es.search(
        index="logs-*",
        query={"match": {"message": "온도"}},
        highlight={"fields": {"message": {}}},
        size=3,
    )
    assert r["hits"]["total"]["value"] == N // 3  # every "온도가" line, and only those
    hit = r["hits"]["hits"][0]
    assert "온도" in hit["_source"]["message"]
    assert "<em>온도</em>" in hit["highlight"]["message"][0]


def test_filters_sort_and_pagination(es: Elasticsearch) -> None:
    query = {
        "bool": {
            "filter": [
                {"term": {"level": "ERROR"}},
                {
                    "range": {
                        "@timestamp": {"gte": "2026-01-01T01:00:00Z", "lt": "2026-01-01T02:00:00Z"}
                    }
                },
            ]
        }
    }
    first = es.search(index="logs-app", query=query, sort=[{"@timestamp": "desc"}], size=5)
    assert first["hits"]["total"]["value"] == 20
    ids = [h["_id"] for h in first["hits"]["hits"]]
    assert ids == ["119", "116", "113", "110", "107"]
    after = es.search(
        index="logs-app",
        query=query,
        sort=[{"@timestamp": "desc"}],
        size=5,
        search_after=first["hits"]["hits"][-1]["sort"],
    )
    assert [h["_id"] for h in after["hits"]["hits"]] == ["104", "101", "98", "95", "92"]
    assert es.count(index="logs-app", query=query)["count"] == 20


def test_aggregations(es: Elasticsearch) -> None:
    r = es.search(
        index="logs-app",
        size=0,
        aggs={
            "per_hour": {
                "date_histogram": {"field": "@timestamp", "fixed_interval": "1h"},
                "aggs": {"levels": {"terms": {"field": "level"}}},
            },
            "slowest": {"max": {"field": "latency_ms"}},
            "hosts": {"cardinality": {"field": "host"}},
        },
    )
    aggs = r["aggregations"]
    hours = aggs["per_hour"]["buckets"]
    assert [b["doc_count"] for b in hours] == [60, 60, 60, 60]
    assert {b["key"]: b["doc_count"] for b in hours[0]["levels"]["buckets"]} == {
        "INFO": 20,
        "WARN": 20,
        "ERROR": 20,
    }
    assert aggs["slowest"]["value"] == max((i * 37) % 500 for i in range(N))
    assert aggs["hosts"]["value"] == 4


def test_scan_reads_every_document_once(es: Elasticsearch) -> None:
    ids = [h["_id"] for h in helpers.scan(es, index="logs-app", size=50)]
    assert sorted(ids, key=int) == [str(i) for i in range(N)]


def test_documents_and_errors(es: Elasticsearch) -> None:
    es.index(index="scratch", id="a", document={"message": "hello"}, refresh=True)
    assert es.get(index="scratch", id="a")["_source"] == {"message": "hello"}
    assert es.exists(index="scratch", id="a")
    es.delete(index="scratch", id="a", refresh=True)
    with pytest.raises(NotFoundError):
        es.get(index="scratch", id="a")
    with pytest.raises(NotFoundError) as missing:
        es.search(index="nothing", query={"match_all": {}})
    assert missing.value.body["error"]["type"] == "index_not_found_exception"
    with pytest.raises(BadRequestError) as bad:
        es.search(index="logs-app", query={"bogus": {}})
    assert bad.value.body["error"]["reason"] == "unknown query [bogus]"


def test_opensearch_client(server: BackgroundServer, es: Elasticsearch) -> None:
    client = OpenSearch(server.url, timeout=120)
    assert client.info()["tagline"] == "You Know, for Search"
    docs = [dict(d, _index="os-logs") for d in log_docs(30)]
    ok, errors = os_helpers.bulk(client, docs, refresh=True)
    assert (ok, errors) == (30, [])
    r = client.search(
        index="os-logs",
        body={
            "query": {"query_string": {"query": "level:ERROR AND host:h2"}},
            "aggs": {"lat": {"avg": {"field": "latency_ms"}}},
        },
    )
    want = [i for i in range(30) if i % 3 == 2 and i % 4 == 2]
    assert sorted(int(h["_id"]) for h in r["hits"]["hits"]) == want
    assert r["aggregations"]["lat"]["value"] == pytest.approx(
        sum((i * 37) % 500 for i in want) / len(want)
    )
    assert len(list(os_helpers.scan(client, index="os-logs", size=7))) == 30
    with pytest.raises(RequestError):
        client.search(index="os-logs", body={"query": {"range": {"@timestamp": {"gte": "soon"}}}})
    client.close()
