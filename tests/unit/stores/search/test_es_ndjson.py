"""The bulk and msearch body parsers, without a server or a store."""

from __future__ import annotations

import json

import pytest

from haeryu.stores.search.es_api.errors import ApiError
from haeryu.stores.search.es_api.ndjson import BulkItem, SearchRequest, parse_bulk, parse_msearch


def ndjson(*objs: object) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def test_actions_pair_with_their_documents_in_order() -> None:
    body = ndjson(
        {"index": {"_index": "logs", "_id": "1"}},
        {"msg": "a"},
        {"delete": {"_index": "logs", "_id": "2"}},
        {"create": {"_id": 3}},
        {"msg": "c"},
    )
    items = parse_bulk(body, default_index="dflt")
    assert items == [
        BulkItem("index", "logs", "1", {"msg": "a"}),
        BulkItem("delete", "logs", "2"),
        BulkItem("create", "dflt", "3", {"msg": "c"}),
    ]


def test_a_document_that_is_not_json_fails_only_its_item() -> None:
    body = (
        ndjson({"index": {"_index": "logs", "_id": "1"}})
        + b'{"msg": "broken\n'
        + ndjson({"index": {"_index": "logs", "_id": "2"}}, {"msg": "ok"})
    )
    bad, good = parse_bulk(body)
    assert bad.error is not None and bad.error.type == "document_parsing_exception"
    assert "failed to parse the document" in bad.error.reason
    assert (bad.index, bad.id, bad.source) == ("logs", "1", None)
    assert good == BulkItem("index", "logs", "2", {"msg": "ok"})


def test_a_broken_action_line_takes_its_document_with_it_and_the_rest_goes_on() -> None:
    body = b"{not json\n" + ndjson(
        {"msg": "orphan"}, {"index": {"_index": "logs", "_id": "9"}}, {"msg": "kept"}
    )
    bad, good = parse_bulk(body)
    assert bad.error is not None and "Malformed action/metadata line" in bad.error.reason
    assert good == BulkItem("index", "logs", "9", {"msg": "kept"})


def test_a_broken_action_line_followed_by_an_action_skips_nothing_else() -> None:
    body = ndjson({"explode": {"_index": "x"}}, {"index": {"_index": "logs"}}, {"msg": "m"})
    bad, good = parse_bulk(body)
    assert bad.error is not None and "unknown action [explode]" in bad.error.reason
    assert good == BulkItem("index", "logs", None, {"msg": "m"})


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ([{"index": {"_id": "1"}}, {"m": 1}], "index is missing"),
        ([{"delete": {"_index": "logs"}}], "id is missing"),
        ([{"index": {"_index": "logs", "_id": {"x": 1}}}, {"m": 1}], "_id must be a string"),
        ([{"index": {"_index": "logs"}}, [1, 2]], "a document must be a JSON object"),
        ([{"index": {"_index": "logs"}}], "has no document line"),
        (
            [{"update": {"_index": "logs", "_id": "1"}}, {"doc": {}}],
            "update action is not supported",
        ),
        ([{"index": "logs"}, {"m": 1}], "[index] must hold an object"),
    ],
)
def test_each_bad_item_says_why(lines: list[object], reason: str) -> None:
    (item,) = parse_bulk(ndjson(*lines))
    assert item.error is not None and reason in item.error.reason
    assert item.error.status == 400


def test_blank_lines_and_a_missing_final_newline_are_tolerated() -> None:
    body = b'\n{"index": {"_index": "a"}}\n\n{"k": 1}'
    assert parse_bulk(body) == [BulkItem("index", "a", None, {"k": 1})]


def test_msearch_pairs_headers_and_bodies() -> None:
    body = ndjson({"index": "logs-*", "ignore_unavailable": True}, {"size": 0}, {}, {"query": {}})
    first, second = parse_msearch(body, default_index="dflt")
    assert first == SearchRequest("logs-*", {"size": 0}, {"ignore_unavailable": True})
    assert second == SearchRequest("dflt", {"query": {}}, {})


def test_msearch_bad_pair_fails_alone_and_odd_lines_fail_the_request() -> None:
    bad, good = parse_msearch(b"{oops\n{}\n" + ndjson({"index": "a"}, {}))
    assert isinstance(bad, ApiError) and "not JSON" in bad.reason
    assert good == SearchRequest("a", {}, {})
    with pytest.raises(ApiError, match="pairs of header and body lines"):
        parse_msearch(ndjson({"index": "a"}))
