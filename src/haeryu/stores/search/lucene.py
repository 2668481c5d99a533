"""Lucene query-string syntax (Kibana's search bar) parsed into the ES query DSL.

Supports terms, ``field:value``, ``"phrases"``, ``AND``/``OR``/``NOT``, ``&&``/``||``/
``!``, ``+``/``-``, parentheses, ``field:(a OR b)``, ranges ``field:[a TO b]``,
``{a TO b}``, ``field:>=5``, wildcards ``te*t``/``?``, ``_exists_:field`` and ``*``.
"""

from __future__ import annotations

import re
from typing import Any

from haeryu.stores.search.errors import SearchError

_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<phrase>"(?:[^"\\]|\\.)*")'
    r"|(?P<range>[\[{][^\]}]*[\]}])|(?P<op>&&|\|\||AND\b|OR\b|NOT\b|!)"
    r"|(?P<word>(?:[^\s()\"\\:]|\\.)+:?))"
)


def parse(
    text: str, default_fields: list[str] | None, default_operator: str = "OR"
) -> dict[str, Any]:
    """The DSL query of a Lucene query string; 400 ``parsing_exception`` when malformed."""
    tokens = _tokens(text)
    parser = _Parser(tokens, default_fields, default_operator.upper())
    query = parser.expression()
    if parser.position != len(tokens):
        raise _error(text, f"unexpected [{tokens[parser.position][1]}]")
    return query


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    position = 0
    text = text.strip()
    while position < len(text):
        m = _TOKEN.match(text, position)
        if not m or m.end() == position:
            raise _error(text, f"cannot parse at [{text[position:]}]")
        position = m.end()
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
    return out


def _error(text: str, why: str) -> SearchError:
    return SearchError(400, "parsing_exception", f"Failed to parse query [{text}]: {why}")


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: list[str] | None, op: str) -> None:
        self.tokens = tokens
        self.position = 0
        self.fields = fields
        self.op = op

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def expression(self) -> dict[str, Any]:
        # Clauses joined by AND/OR; a clause without an operator uses the default one.
        must: list[dict[str, Any]] = []
        should: list[dict[str, Any]] = []
        must_not: list[dict[str, Any]] = []
        pending_or = False
        and_next = False
        clauses: list[tuple[str, dict[str, Any]]] = []
        while (token := self.peek()) is not None and token[0] != "rp":
            if token[0] == "op" and token[1] in ("AND", "&&"):
                self.position += 1
                if clauses and clauses[-1][0] == "should":
                    clauses[-1] = ("must", clauses[-1][1])
                pending_or = False
                and_next = True
                continue
            if token[0] == "op" and token[1] in ("OR", "||"):
                self.position += 1
                pending_or = True
                continue
            occur, query = self.clause()
            if occur == "default":
                if and_next:
                    occur = "must"
                elif pending_or:
                    occur = "should"
                else:
                    occur = "must" if self.op == "AND" else "should"
            and_next = False
            pending_or = False
            clauses.append((occur, query))
        if not clauses:
            raise _error("", "empty expression")
        for occur, query in clauses:
            {"must": must, "should": should, "must_not": must_not}[occur].append(query)
        if len(clauses) == 1 and clauses[0][0] != "must_not":
            return clauses[0][1]
        body: dict[str, Any] = {}
        if must:
            body["must"] = must
        if should:
            body["should"] = should
            if not must:
                body["minimum_should_match"] = 1
        if must_not:
            body["must_not"] = must_not
            if not must and not should:
                body["must"] = [{"match_all": {}}]
        return {"bool": body}

    def clause(self) -> tuple[str, dict[str, Any]]:
        token = self.peek()
        assert token is not None
        occur = "default"
        if token[0] == "op" and token[1] in ("NOT", "!"):
            self.position += 1
            return "must_not", self.clause()[1]
        if token[0] == "word" and token[1][0] in "+-" and len(token[1]) > 1:
            occur = "must" if token[1][0] == "+" else "must_not"
            self.tokens[self.position] = ("word", token[1][1:])
        return occur, self.primary(None)

    def primary(self, field: str | None) -> dict[str, Any]:
        token = self.peek()
        if token is None:
            raise _error("", "query ends too early")
        kind, value = token
        self.position += 1
        if kind == "lp":
            inner = self.expression()
            if self.peek() is None or self.peek()[0] != "rp":  # type: ignore[index]
                raise _error("", "missing )")
            self.position += 1
            return _with_field(inner, field)
        if kind == "word" and value.endswith(":") and field is None:
            name = _unescape(value[:-1])
            if name == "_exists_":
                target = self.peek()
                self.position += 1
                if target is None:
                    raise _error("", "_exists_ needs a field")
                return {"exists": {"field": target[1]}}
            return self.primary(name)
        if kind == "phrase":
            slop = 0
            following = self.peek()
            if following and following[0] == "word" and re.fullmatch(r"~\d*", following[1]):
                self.position += 1
                slop = int(following[1][1:] or 2)
            return self.each(
                field,
                lambda f: {"match_phrase": {f: {"query": _unescape(value[1:-1]), "slop": slop}}},
            )
        if kind == "range":
            return self.range(field, value)
        if kind == "word" and value[0] in "[{]}":
            raise _error(value, "a range needs [from TO to] with its closing bracket")
        if kind == "word":
            return self.leaf(field, "word", re.sub(r"(?<!\\)~\d*(\.\d+)?$", "", value) or value)
        raise _error("", f"unexpected [{value}]")

    def range(self, field: str | None, text: str) -> dict[str, Any]:
        if field is None:
            raise _error(text, "a range needs a field")
        m = re.fullmatch(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])", text)
        if not m:
            raise _error(text, "expected [a TO b]")
        body: dict[str, Any] = {}
        if m.group(2) != "*":
            body["gte" if m.group(1) == "[" else "gt"] = _unescape(m.group(2))
        if m.group(3) != "*":
            body["lte" if m.group(4) == "]" else "lt"] = _unescape(m.group(3))
        return {"range": {field: body}}

    def leaf(self, field: str | None, kind: str, text: str) -> dict[str, Any]:
        if kind == "word":
            for prefix, op in ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt")):
                if text.startswith(prefix) and field is not None:
                    return {"range": {field: {op: _unescape(text[len(prefix) :])}}}
            if text == "*":
                return {"exists": {"field": field}} if field else {"match_all": {}}
            if ("*" in text or "?" in text) and "\\" not in text:
                return self.each(field, lambda f: {"wildcard": {f: {"value": text}}})
            text = _unescape(text)
            return self.each(field, lambda f: {"match": {f: {"query": text}}})
        return self.each(field, lambda f: {"match_phrase": {f: {"query": text}}})

    def each(self, field: str | None, make: Any) -> dict[str, Any]:
        if field is not None:
            return dict(make(field))
        fields = self.fields or ["*"]
        if len(fields) == 1:
            return dict(make(fields[0]))
        return {"bool": {"should": [make(f) for f in fields], "minimum_should_match": 1}}


def _with_field(query: dict[str, Any], field: str | None) -> dict[str, Any]:
    if field is None:
        return query
    if "match" in query and "*" in query["match"]:
        return {"match": {field: query["match"]["*"]}}
    if "match_phrase" in query and "*" in query["match_phrase"]:
        return {"match_phrase": {field: query["match_phrase"]["*"]}}
    if "wildcard" in query and "*" in query["wildcard"]:
        return {"wildcard": {field: query["wildcard"]["*"]}}
    if "bool" in query:
        return {
            "bool": {
                k: [_with_field(q, field) for q in v] if isinstance(v, list) else v
                for k, v in query["bool"].items()
            }
        }
    return query


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
