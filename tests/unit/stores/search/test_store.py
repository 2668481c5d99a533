"""SearchStore: ES request bodies in, ES answers out (query DSL, aggregations, errors)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haeryu.stores.search import SearchError, SearchStore

MAPPING = {
    "mappings": {
        "properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "text", "analyzer": "nori"},
            "level": {"type": "keyword"},
            "value": {"type": "long"},
            "host": {"type": "keyword"},
        }
    }
}
DOCS: list[tuple[str | None, dict[str, Any]]] = [
    (
        "1",
        {
            "@timestamp": "2026-01-01T00:00:00Z",
            "message": "온도가 기준치를 초과했습니다",
            "level": "WARN",
            "value": 10,
            "host": "a",
        },
    ),
    (
        "2",
        {
            "@timestamp": "2026-01-01T01:00:00Z",
            "message": "온도센서 점검 완료",
            "level": "INFO",
            "value": 20,
            "host": "b",
        },
    ),
    (
        "3",
        {
            "@timestamp": "2026-01-02T00:00:00Z",
            "message": "Disk usage exceeded 90 percent",
            "level": "ERROR",
            "value": 30,
            "host": "a",
            "extra": {"x": 1},
        },
    ),
    (
        "4",
        {
            "@timestamp": "2026-01-02T00:30:00Z",
            "message": "온도를 확인하세요",
            "level": "INFO",
            "value": 40,
            "host": "c",
        },
    ),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SearchStore]:
    s = SearchStore(tmp_path, refresh_interval=None)
    s.create_index("logs", MAPPING)
    items = s.index_documents("logs", DOCS)
    assert [i["status"] for i in items] == [201] * 4
    s.refresh()
    yield s
    s.close()


def ids(store: SearchStore, body: dict[str, Any]) -> list[str]:
    return sorted(h["_id"] for h in store.search("logs", body)["hits"]["hits"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"match": {"message": "온도"}}, ["1", "2", "4"]),
        ({"match": {"message": "초과했습니다"}}, ["1"]),
        ({"match": {"message": "exceeding"}}, ["3"]),
        ({"match_phrase": {"message": "기준치를 초과"}}, ["1"]),
        ({"term": {"level": "INFO"}}, ["2", "4"]),
        ({"terms": {"host": ["a", "c"]}}, ["1", "3", "4"]),
        ({"range": {"value": {"gte": 20, "lt": 40}}}, ["2", "3"]),
        (
            {
                "range": {
                    "@timestamp": {"gte": "2026-01-01T00:30:00Z", "lte": "2026-01-02T00:00:00Z"}
                }
            },
            ["2", "3"],
        ),
        ({"exists": {"field": "extra.x"}}, ["3"]),
        ({"prefix": {"level": "IN"}}, ["2", "4"]),
        ({"wildcard": {"level": "*RN"}}, ["1"]),
        (
            {
                "bool": {
                    "must": [{"match": {"message": "온도"}}],
                    "must_not": [{"term": {"level": "WARN"}}],
                }
            },
            ["2", "4"],
        ),
        ({"bool": {"should": [{"term": {"host": "b"}}, {"term": {"value": 30}}]}}, ["2", "3"]),
        ({"query_string": {"query": "level:INFO AND 온도"}}, ["2", "4"]),
        ({"query_string": {"query": "host:a OR value:[35 TO *]"}}, ["1", "3", "4"]),
        ({"query_string": {"query": '"기준치를 초과" OR _exists_:extra.x'}}, ["1", "3"]),
        ({"simple_query_string": {"query": "점검 | disk"}}, ["2", "3"]),
        ({"multi_match": {"query": "a", "fields": ["host", "level"]}}, ["1", "3"]),
        ({"match_all": {}}, ["1", "2", "3", "4"]),
    ],
)
def test_query_dsl(store: SearchStore, query: dict[str, Any], expected: list[str]) -> None:
    assert ids(store, {"query": query}) == expected


def test_sort_pagination_and_search_after(store: SearchStore) -> None:
    body: dict[str, Any] = {"sort": [{"@timestamp": "desc"}], "size": 2}
    first = store.search("logs", body)["hits"]["hits"]
    assert [h["_id"] for h in first] == ["4", "3"]
    after = store.search("logs", {**body, "search_after": first[-1]["sort"]})["hits"]["hits"]
    assert [h["_id"] for h in after] == ["2", "1"]
    assert [
        h["_id"]
        for h in store.search("logs", {"sort": [{"value": "asc"}], "from": 1, "size": 2})["hits"][
            "hits"
        ]
    ] == ["2", "3"]


def test_highlight_marks_korean_words_by_their_root(store: SearchStore) -> None:
    hits = store.search(
        "logs", {"query": {"match": {"message": "온도"}}, "highlight": {"fields": {"message": {}}}}
    )["hits"]["hits"]
    marked = sorted(h["highlight"]["message"][0] for h in hits)
    assert marked == [
        "<em>온도</em>가 기준치를 초과했습니다",
        "<em>온도</em>를 확인하세요",
        "<em>온도</em>센서 점검 완료",
    ]


def test_aggregations_merge_across_day_partitions(store: SearchStore) -> None:
    body = {
        "size": 0,
        "aggs": {
            "levels": {"terms": {"field": "level"}, "aggs": {"mean": {"avg": {"field": "value"}}}},
            "days": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day"}},
            "hosts": {"cardinality": {"field": "host"}},
            "top": {"max": {"field": "value"}},
            "total": {"sum": {"field": "value"}},
        },
    }
    aggs = store.search("logs", body)["aggregations"]
    assert [(b["key"], b["doc_count"], b["mean"]["value"]) for b in aggs["levels"]["buckets"]] == [
        ("INFO", 2, 30.0),
        ("ERROR", 1, 30.0),
        ("WARN", 1, 10.0),
    ]
    assert [b["doc_count"] for b in aggs["days"]["buckets"]] == [2, 2]
    assert aggs["hosts"]["value"] == 3
    assert aggs["top"]["value"] == 40
    assert aggs["total"]["value"] == 100
    assert store.stats("logs")[0]["partitions"] == ["2026-01-01", "2026-01-02"]


def test_source_filtering_upsert_and_delete(store: SearchStore) -> None:
    hit = store.search("logs", {"query": {"ids": {"values": ["3"]}}, "_source": ["extra.*"]})[
        "hits"
    ]["hits"][0]
    assert hit["_source"] == {"extra": {"x": 1}}
    item = store.index_documents("logs", [("3", {**DOCS[2][1], "value": 31})])[0]
    assert item["result"] == "updated"
    store.refresh()
    assert store.count("logs") == 4
    assert (store.get_document("logs", "3") or {})["value"] == 31
    assert store.delete_document("logs", "3")["result"] == "deleted"
    store.refresh()
    assert store.count("logs") == 3


def test_dynamic_mapping_infers_like_elasticsearch(store: SearchStore) -> None:
    store.index_documents(
        "auto",
        [(None, {"n": 1, "f": 1.5, "ok": True, "when": "2026-01-01T00:00:00Z", "s": "hello"})],
    )
    props = store.get_mapping("auto")["auto"]["mappings"]["properties"]
    assert props["n"] == {"type": "long"}
    assert props["f"] == {"type": "float"}
    assert props["ok"] == {"type": "boolean"}
    assert props["when"] == {"type": "date"}
    assert props["s"]["fields"]["keyword"]["type"] == "keyword"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"query": {"match": {"nope": "x"}}}, "query_shard_exception"),
        ({"query": {"foo": {}}}, "parsing_exception"),
        ({"query": {"range": {"@timestamp": {"gte": "yesterday"}}}}, "parse_exception"),
        ({"query": {"query_string": {"query": "level:(INFO"}}}, "parsing_exception"),
        ({"aggs": {"x": {"terms": {"field": "message"}}}}, "illegal_argument_exception"),
        ({"frm": 1}, "parsing_exception"),
    ],
)
def test_bad_requests_are_4xx_with_the_es_error_type(
    store: SearchStore, body: dict[str, Any], error: str
) -> None:
    with pytest.raises(SearchError) as info:
        store.search("logs", body)
    assert 400 <= info.value.status < 500
    assert info.value.type == error
    assert info.value.to_es_body()["error"]["type"] == error


def test_a_bad_document_fails_alone(store: SearchStore) -> None:
    items = store.index_documents(
        "logs", [("x", {"@timestamp": "nope"}), ("y", {"value": "many"}), ("z", {"value": 5})]
    )
    assert [i["status"] for i in items] == [400, 400, 201]
    assert items[0]["error"]["type"] == "mapper_parsing_exception"


def test_index_patterns_and_missing_indexes(store: SearchStore) -> None:
    store.create_index("logs-2")
    assert store.indices("logs*") == ["logs", "logs-2"]
    assert store.indices("nothing-*") == []
    with pytest.raises(SearchError) as info:
        store.indices("nothing")
    assert info.value.status == 404
    with pytest.raises(SearchError) as exists:
        store.create_index("logs")
    assert exists.value.type == "resource_already_exists_exception"


def test_a_reader_process_sees_new_commits(store: SearchStore, tmp_path: Path) -> None:
    reader = SearchStore(tmp_path, writable=False)
    assert reader.count("logs") == 4
    store.index_documents(
        "logs", [("5", {"message": "새 문서", "@timestamp": "2026-01-03T00:00:00Z"})]
    )
    store.refresh()
    assert reader.count("logs") == 5


def test_what_kibana_and_grafana_send(store: SearchStore) -> None:
    body = {
        "size": 1,
        "_source": False,
        "fields": [{"field": "*", "include_unmapped": "true"}],
        "version": True,
        "stored_fields": ["*"],
        "script_fields": {},
        "runtime_mappings": {},
        "sort": [{"@timestamp": {"order": "desc", "unmapped_type": "boolean"}}],
        "query": {
            "bool": {
                "filter": [
                    {
                        "range": {
                            "@timestamp": {
                                "gte": 1767225600000,
                                "lte": 1767398400000,
                                "format": "epoch_millis",
                            }
                        }
                    }
                ]
            }
        },
        "aggs": {
            "histogram": {
                "date_histogram": {
                    "field": "@timestamp",
                    "fixed_interval": "12h",
                    "min_doc_count": 1,
                    "extended_bounds": {"min": 1767225600000, "max": 1767398400000},
                    "time_zone": "UTC",
                    "format": "epoch_millis",
                }
            },
            "levels": {"terms": {"field": "level", "order": {"_key": "desc"}, "min_doc_count": 1}},
        },
    }
    answer = store.search("logs", body)
    hit = answer["hits"]["hits"][0]
    assert "_source" not in hit and hit["_version"] == 1
    assert hit["fields"]["level"] == ["INFO"] and hit["_id"] == "4"
    buckets = answer["aggregations"]["histogram"]["buckets"]
    assert [(b["key_as_string"], b["doc_count"]) for b in buckets] == [
        ("1767225600000", 2),
        ("1767312000000", 2),
    ]
    levels = answer["aggregations"]["levels"]["buckets"]
    assert [b["key"] for b in levels] == ["WARN", "INFO", "ERROR"]
