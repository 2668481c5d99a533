"""Lucene query strings (Kibana's search bar) into the query DSL."""

from __future__ import annotations

from typing import Any

import pytest

from haeryu.stores.search.errors import SearchError
from haeryu.stores.search.lucene import parse


def m(field: str, text: str) -> dict[str, Any]:
    return {"match": {field: {"query": text}}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", {"match_all": {}}),
        ("level:ERROR", m("level", "ERROR")),
        ("status:>=500", {"range": {"status": {"gte": "500"}}}),
        ("code:[200 TO 299}", {"range": {"code": {"gte": "200", "lt": "299"}}}),
        ("host.name:web-*", {"wildcard": {"host.name": {"value": "web-*"}}}),
        ("_exists_:user", {"exists": {"field": "user"}}),
        ('msg:"disk full"~2', {"match_phrase": {"msg": {"query": "disk full", "slop": 2}}}),
        (
            "a AND (b OR c) -d",
            {
                "bool": {
                    "must": [
                        m("*", "a"),
                        {"bool": {"should": [m("*", "b"), m("*", "c")], "minimum_should_match": 1}},
                    ],
                    "must_not": [m("*", "d")],
                }
            },
        ),
        (
            "NOT level:INFO",
            {"bool": {"must_not": [m("level", "INFO")], "must": [{"match_all": {}}]}},
        ),
        (
            "level:(ERROR OR WARN)",
            {
                "bool": {
                    "should": [m("level", "ERROR"), m("level", "WARN")],
                    "minimum_should_match": 1,
                }
            },
        ),
        ("온도 && 초과", {"bool": {"must": [m("*", "온도"), m("*", "초과")]}}),
    ],
)
def test_parse(text: str, expected: dict[str, Any]) -> None:
    assert parse(text, None) == expected


def test_default_operator_and() -> None:
    assert parse("a b", None, "AND") == {"bool": {"must": [m("*", "a"), m("*", "b")]}}


@pytest.mark.parametrize("text", ["level:(ERROR", "a:[1 TO", "AND", ")"])
def test_malformed_query_strings_are_parsing_exceptions(text: str) -> None:
    with pytest.raises(SearchError) as info:
        parse(text, None)
    assert info.value.type == "parsing_exception" and info.value.status == 400
