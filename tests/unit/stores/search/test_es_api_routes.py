"""The REST layer, served on 127.0.0.1, over a small in-memory store: routing, bulk items, cursors, errors.

The real store's queries are tested with it (tests/integration/stores/search); here the
store is a fake of our own contract so each HTTP behaviour shows on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from haeryu.stores.search.es_api.server import BackgroundServer
from support.fake_search_store import FakeSearchStore


@pytest.fixture
def store() -> FakeSearchStore:
    return FakeSearchStore()


@pytest.fixture
def client(store: FakeSearchStore) -> Iterator[httpx.Client]:
    with (
        BackgroundServer(store, max_content_length=4096) as server,
        httpx.Client(base_url=server.url, timeout=10) as c,
    ):
        yield c


def ndjson(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def test_banner_names_the_product_and_a_version(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["x-elastic-product"] == "Elasticsearch"
    assert r.json()["version"]["number"].split(".")[0] == "8"
    assert r.json()["tagline"] == "You Know, for Search"
    head = client.head("/")
    assert head.status_code == 200 and head.headers["x-elastic-product"] == "Elasticsearch"


def test_pretty_indents_json_answers(client: httpx.Client) -> None:
    r = client.get("/?pretty")
    assert r.text.startswith('{\n  "name": "haeryu"')
    assert int(r.headers["content-length"]) == len(r.content)
    assert client.get("/?pretty=false").text.startswith('{"name":"haeryu"')


def test_index_lifecycle(client: httpx.Client, store: FakeSearchStore) -> None:
    assert client.head("/logs").status_code == 404
    r = client.put("/logs", json={"mappings": {"properties": {"msg": {"type": "text"}}}})
    assert r.json() == {"acknowledged": True, "shards_acknowledged": True, "index": "logs"}
    assert client.head("/logs").status_code == 200
    assert (client.head("/lo*").status_code, client.head("/nothing-*").status_code) == (200, 404)
    again = client.put("/logs")
    assert again.status_code == 400
    assert again.json()["error"]["type"] == "resource_already_exists_exception"
    assert client.get("/logs/_mapping").json() == {
        "logs": {"mappings": {"properties": {"msg": {"type": "text"}}}}
    }
    assert client.delete("/logs").json() == {"acknowledged": True}
    missing = client.get("/logs/_mapping")
    assert missing.status_code == 404
    assert missing.json()["error"]["root_cause"][0]["type"] == "index_not_found_exception"
    assert missing.json()["status"] == 404


@pytest.mark.parametrize("name", ["Logs", "_logs", "a*b", "a,b", "a b"])
def test_bad_index_names_are_refused_with_the_rule(client: httpx.Client, name: str) -> None:
    r = client.put(f"/{name}")
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_index_name_exception"


def test_bulk_indexes_the_good_items_and_reports_each_bad_one(
    client: httpx.Client, store: FakeSearchStore
) -> None:
    body = (
        ndjson({"index": {"_index": "logs", "_id": "1"}}, {"msg": "one"})
        + b'{"index": {"_index": "logs", "_id": "2"}}\n{"msg": "cut\n'
        + ndjson(
            {"create": {"_index": "logs", "_id": "1"}},
            {"msg": "dup"},
            {"index": {"_index": "logs", "_id": "3"}},
            {"bad": True},
            {"index": {"_id": "4"}},
            {"msg": "four"},
            {"delete": {"_index": "logs", "_id": "1"}},
            {"delete": {"_index": "logs", "_id": "nope"}},
        )
    )
    r = client.post("/_bulk?refresh=true", content=body)
    assert r.status_code == 200
    answer = r.json()
    assert answer["errors"] is True
    got = [(next(iter(i)), i[next(iter(i))]["status"]) for i in answer["items"]]
    assert got == [
        ("index", 201),
        ("index", 400),  # the document line is not JSON
        ("create", 409),  # id 1 exists
        ("index", 400),  # the store refused the document
        ("index", 400),  # no index on the line or in the path
        ("delete", 200),
        ("delete", 404),
    ]
    assert answer["items"][1]["index"]["error"]["type"] == "document_parsing_exception"
    assert answer["items"][4]["index"]["error"]["reason"] == "index is missing"
    # what was fine is stored; what failed is not: 1 was indexed then deleted
    assert store.visible["logs"] == {}
    client.post("/logs/_bulk?refresh", content=ndjson({"index": {"_id": "5"}}, {"m": 5}))
    assert store.visible["logs"] == {"5": {"m": 5}}


def test_documents_put_get_create_delete(client: httpx.Client) -> None:
    r = client.put("/logs/_doc/a?refresh=true", json={"msg": "hello"})
    assert r.status_code == 201 and r.json()["result"] == "created"
    assert client.put("/logs/_doc/a", json={"msg": "again"}).status_code == 200
    got = client.get("/logs/_doc/a").json()
    assert got["found"] is True and got["_source"] == {"msg": "again"}
    assert client.get("/logs/_source/a").json() == {"msg": "again"}
    conflict = client.put("/logs/_create/a", json={"msg": "x"})
    assert conflict.status_code == 409
    assert conflict.json()["error"]["type"] == "version_conflict_engine_exception"
    posted = client.post("/logs/_doc", json={"msg": "auto id"})
    assert posted.status_code == 201 and posted.json()["_id"]
    assert client.delete("/logs/_doc/a").json()["result"] == "deleted"
    gone = client.get("/logs/_doc/a")
    assert gone.status_code == 404 and gone.json()["found"] is False
    assert client.head("/logs/_doc/a").status_code == 404
    assert client.delete("/logs/_doc/a").status_code == 404


def test_search_count_and_url_query(client: httpx.Client) -> None:
    body = ndjson(*[x for i in range(5) for x in ({"index": {"_id": str(i)}}, {"n": i % 2})])
    client.post("/logs-a/_bulk?refresh=wait_for", content=body)
    r = client.post("/logs-*/_search", json={"query": {"term": {"n": 1}}, "size": 1})
    answer = r.json()
    assert answer["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert len(answer["hits"]["hits"]) == 1
    assert answer["_shards"]["failed"] == 0 and "took" in answer
    as_int = client.get("/_search?rest_total_hits_as_int=true&size=0").json()
    assert as_int["hits"]["total"] == 5
    assert client.post("/logs-a/_count", json={"query": {"term": {"n": 0}}}).json()["count"] == 3
    assert client.get("/_count").json()["count"] == 5


def test_msearch_answers_each_search_alone(client: httpx.Client) -> None:
    client.post("/logs/_bulk?refresh", content=ndjson({"index": {"_id": "1"}}, {"n": 1}))
    body = ndjson(
        {"index": "logs"},
        {"query": {"match_all": {}}},
        {"index": "missing"},
        {},
        {"index": "logs"},
        {"query": {"fuzzy_unknown": {}}},
    )
    got = client.post("/_msearch", content=body).json()["responses"]
    assert got[0]["status"] == 200 and got[0]["hits"]["total"]["value"] == 1
    assert got[1]["status"] == 404 and got[1]["error"]["type"] == "index_not_found_exception"
    assert got[2]["status"] == 400 and "unknown query" in got[2]["error"]["reason"]


def test_scroll_pages_through_every_hit_once(client: httpx.Client) -> None:
    body = ndjson(*[x for i in range(7) for x in ({"index": {"_id": f"{i}"}}, {"n": i})])
    client.post("/logs/_bulk?refresh", content=body)
    first = client.post("/logs/_search?scroll=1m", json={"size": 3, "sort": ["_doc"]}).json()
    seen = [h["_id"] for h in first["hits"]["hits"]]
    scroll_id = first["_scroll_id"]
    while True:
        page = client.post("/_search/scroll", json={"scroll": "1m", "scroll_id": scroll_id}).json()
        if not page["hits"]["hits"]:
            break
        seen += [h["_id"] for h in page["hits"]["hits"]]
    assert seen == [str(i) for i in range(7)]
    assert client.request("DELETE", "/_search/scroll", json={"scroll_id": [scroll_id]}).json() == {
        "succeeded": True,
        "num_freed": 1,
    }
    gone = client.post("/_search/scroll", json={"scroll_id": scroll_id})
    assert gone.status_code == 404
    assert gone.json()["error"]["type"] == "search_context_missing_exception"


def test_point_in_time_names_the_index_for_later_searches(client: httpx.Client) -> None:
    client.post("/logs/_bulk?refresh", content=ndjson({"index": {"_id": "1"}}, {"n": 1}))
    pit = client.post("/logs/_pit?keep_alive=1m").json()["id"]
    r = client.post("/_search", json={"pit": {"id": pit, "keep_alive": "1m"}}).json()
    assert r["pit_id"] == pit and r["hits"]["total"]["value"] == 1
    assert client.request("DELETE", "/_pit", json={"id": pit}).json()["num_freed"] == 1
    assert client.post("/_search", json={"pit": {"id": pit}}).status_code == 404


def test_cat_indices_as_text_and_json(client: httpx.Client) -> None:
    client.post(
        "/b/_bulk?refresh", content=ndjson({"index": {}}, {"n": 1}, {"index": {}}, {"n": 2})
    )
    client.put("/a")
    rows = client.get("/_cat/indices?format=json").json()
    assert [(r["index"], r["docs.count"], r["health"]) for r in rows] == [
        ("a", "0", "green"),
        ("b", "2", "green"),
    ]
    text = client.get("/_cat/indices?v&h=index,docs.count,store.size&s=index:desc").text
    assert text.splitlines() == [
        "index docs.count store.size",
        "b     2          1.9kb",
        "a     0          0b",
    ]
    assert client.get("/_cat/indices/b?h=index").text == "b\n"
    assert client.get("/_cat/indices?h=nope").status_code == 400


def test_oversized_request_gets_413_and_the_server_keeps_serving(client: httpx.Client) -> None:
    big = ndjson({"index": {"_index": "logs"}}, {"msg": "x" * 5000})
    r = client.post("/_bulk", content=big)
    assert r.status_code == 413
    assert r.json()["error"]["type"] == "content_too_long_exception"
    assert "over the limit of 4096 bytes" in r.json()["error"]["reason"]
    # a chunked body without Content-Length is cut off the same way
    chunks = iter([b"x" * 3000, b"x" * 3000])
    assert client.post("/_bulk", content=chunks).status_code == 413
    ok = client.post("/_bulk", content=ndjson({"index": {"_index": "logs"}}, {"msg": "small"}))
    assert ok.status_code == 200 and ok.json()["errors"] is False


def test_bad_json_unknown_paths_and_parameters_answer_400(client: httpx.Client) -> None:
    r = client.post("/logs/_search", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "parse_exception"
    assert client.post("/logs/_search", content=b"[1]").status_code == 400
    nope = client.get("/logs/_nothing_here/x/y")
    assert nope.status_code == 400 and "no handler found for uri" in nope.json()["error"]
    assert client.post("/_bulk?refresh=maybe", content=b"").status_code == 400
    assert client.get("/_search?size=ten").json()["error"]["reason"] == (
        "[size] must be an integer, got [ten]"
    )
    assert client.post("/_search?scroll=forever", json={}).status_code == 400


def test_an_unexpected_store_failure_is_a_500_and_the_next_request_works(
    client: httpx.Client, store: FakeSearchStore
) -> None:
    store.fail_next = RuntimeError("disk on fire")
    r = client.post("/_bulk", content=ndjson({"index": {"_index": "logs"}}, {"m": 1}))
    assert r.status_code == 500
    assert r.json()["error"]["reason"] == "RuntimeError: disk on fire"
    ok = client.post("/_bulk", content=ndjson({"index": {"_index": "logs"}}, {"m": 1}))
    assert ok.status_code == 200 and ok.json()["errors"] is False
