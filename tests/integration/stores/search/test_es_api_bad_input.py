"""Bad input through the API over a real store: each bad request or bulk item gets a
4xx with a reason that says what is wrong, nothing else is lost, and the server keeps
serving."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import httpx
import pytest

from support.search_api import LOG_MAPPING, served_store

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("search")
    with (
        served_store(root, max_content_length=LIMIT) as server,
        httpx.Client(base_url=server.url, timeout=120) as client,
    ):
        # English-only mapping: no Korean model to load in this module
        mapping = json.loads(json.dumps(LOG_MAPPING).replace('"nori"', '"standard"'))
        assert client.put("/logs", json=mapping).status_code == 200
        yield client


def ndjson(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def ids(http: httpx.Client, index: str) -> list[str]:
    r = http.post(f"/{index}/_search", json={"size": 100, "sort": [{"latency_ms": "asc"}]})
    return [h["_id"] for h in r.json()["hits"]["hits"]]


def test_malformed_bulk_lines_fail_their_items_only(http: httpx.Client) -> None:
    body = (
        ndjson({"index": {"_index": "logs", "_id": "ok-1"}}, {"message": "a", "latency_ms": 1})
        + b'{"index": {"_index": "logs", "_id": "cut"}}\n{"message": "no end\n'
        + b'{"index": {"_index": "logs", "_id": \n{"message": "orphan"}\n'
        + ndjson(
            {"index": {"_index": "logs", "_id": "bad-date"}},
            {"@timestamp": "last tuesday", "latency_ms": 2},
            {"index": {"_index": "logs", "_id": "bad-long"}},
            {"latency_ms": "fast"},
            {"index": {"_index": "logs", "_id": "ok-2"}},
            {"message": "b", "latency_ms": 3},
        )
    )
    r = http.post("/_bulk?refresh=true", content=body)
    assert r.status_code == 200
    items = [i["index"] for i in r.json()["items"]]
    assert [(i.get("_id"), i["status"]) for i in items] == [
        ("ok-1", 201),
        ("cut", 400),
        (None, 400),
        ("bad-date", 400),
        ("bad-long", 400),
        ("ok-2", 201),
    ]
    reasons = [i.get("error", {}).get("reason", "") for i in items]
    assert "failed to parse the document" in reasons[1]
    assert "Malformed action/metadata line" in reasons[2]
    assert "last tuesday" in reasons[3] and "@timestamp" in reasons[3]
    assert "latency_ms" in reasons[4]
    # the good documents are indexed; the bad ones are not, each reported above
    assert ids(http, "logs") == ["ok-1", "ok-2"]


@pytest.mark.parametrize(
    ("body", "status", "kind", "says"),
    [
        (
            {"query": {"matchh": {"message": "x"}}},
            400,
            "parsing_exception",
            "unknown query [matchh]",
        ),
        ({"query": {"match_all": {}}, "sizee": 3}, 400, "parsing_exception", "[sizee]"),
        (
            {"query": {"range": {"@timestamp": {"gte": "2026-13-45"}}}},
            400,
            "parse_exception",
            "failed to parse date [2026-13-45]",
        ),
        ({"size": "many"}, 400, "illegal_argument_exception", "[size] must be an integer"),
    ],
)
def test_bad_queries_get_400_with_the_reason(
    http: httpx.Client, body: dict[str, object], status: int, kind: str, says: str
) -> None:
    r = http.post("/logs/_search", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["type"] == kind and says in error["reason"]
    assert error["root_cause"][0]["type"] == kind


def test_oversized_request_gets_413_and_nothing_of_it_is_indexed(http: httpx.Client) -> None:
    lines = [x for i in range(2000) for x in ({"index": {"_id": f"big-{i}"}}, {"latency_ms": i})]
    r = http.post("/logs/_bulk?refresh=true", content=ndjson(*lines))
    assert r.status_code == 413
    assert f"over the limit of {LIMIT} bytes" in r.json()["error"]["reason"]
    assert not [i for i in ids(http, "logs") if i.startswith("big-")]
    small = http.post("/logs/_bulk?refresh=true", content=ndjson(*lines[:20]))
    assert small.status_code == 200 and small.json()["errors"] is False


def test_garbage_everywhere_gets_4xx_and_the_server_keeps_serving(http: httpx.Client) -> None:
    rng = random.Random(9)
    paths = ["/_bulk", "/logs/_search", "/_msearch", "/logs/_doc/x", "/logs/_count", "/logs"]
    for _ in range(60):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        path = rng.choice(paths)
        method = "PUT" if path in ("/logs/_doc/x", "/logs") else "POST"
        r = http.request(method, path, content=junk)
        if path in ("/_bulk", "/_msearch"):  # each line or pair of junk fails on its own
            assert r.status_code in (200, 400) and "error" in r.text, r.text
        else:
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    assert http.get("/").status_code == 200
    assert http.post("/logs/_count", json={}).json()["count"] >= 2
