"""The Elasticsearch query DSL translated into tantivy queries for one index's mapping.

Text fields are searched through ``_text`` (terms prefixed by their field, analyzed
with the field's search analyzer); keyword, numeric, date and boolean fields through
the typed ``_kw`` JSON field; the index's time field through ``_ts``.  Terms searched
per field are collected for the highlighter.  Malformed DSL raises a 400
``parsing_exception``; a field no mapping knows raises :class:`UnknownField` (the
store turns it into a 400 when no index of the pattern knows the field).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import tantivy

from haeryu.stores.search import lucene
from haeryu.stores.search.analysis import analyzer
from haeryu.stores.search.dates import iso, parse_date
from haeryu.stores.search.errors import SearchError, parsing
from haeryu.stores.search.mapping import FieldSpec, Mapping
from haeryu.stores.search.partition import PARSER, SCHEMA, SEP, term

Q = tantivy.Query
Occur = tantivy.Occur


class UnknownField(SearchError):
    """A query names a field the index's mapping does not have."""

    def __init__(self, name: str, index: str | None) -> None:
        super().__init__(
            400,
            "query_shard_exception",
            f"failed to create query: unknown field [{name}] in index [{index}]",
            index=index,
        )
        self.field = name


@dataclass
class TimeBounds:
    """The time range a query restricts the index's time field to (partition pruning)."""

    lower: datetime | None = None
    upper: datetime | None = None


@dataclass
class Translation:
    """A translated query with what the highlighter and partition pruning need."""

    query: Any
    terms: dict[str, set[str]] = field(default_factory=dict)
    time: TimeBounds = field(default_factory=TimeBounds)


class Translator:
    """Translates DSL queries against ``mapping``; ``now`` anchors date math."""

    def __init__(self, mapping: Mapping, now: datetime) -> None:
        self.mapping = mapping
        self.now = now
        self.terms: dict[str, set[str]] = {}
        self.time = TimeBounds()
        self._handlers: dict[str, Callable[[Any], Any]] = {
            "match_all": lambda body: Q.all_query(),
            "match_none": lambda body: Q.empty_query(),
            "match": self.match,
            "match_phrase": self.match_phrase,
            "match_phrase_prefix": self.match_phrase,
            "multi_match": self.multi_match,
            "query_string": self.query_string,
            "simple_query_string": self.query_string,
            "term": self.term,
            "terms": self.terms_query,
            "range": self.range,
            "exists": self.exists,
            "prefix": self.prefix,
            "wildcard": self.wildcard,
            "regexp": self.regexp,
            "bool": self.bool,
            "ids": self.ids,
            "constant_score": lambda body: Q.const_score_query(self.query(body["filter"]), 1.0),
        }

    def translate(self, dsl: dict[str, Any] | None) -> Translation:
        """The tantivy query of a DSL ``query`` (match_all when None)."""
        query = self.query(dsl) if dsl else Q.all_query()
        return Translation(query, self.terms, self.time)

    def query(self, dsl: Any) -> Any:
        if not isinstance(dsl, dict) or len(dsl) != 1:
            raise parsing(f"query malformed, expected one query object, got [{dsl}]")
        ((kind, body),) = dsl.items()
        handler = self._handlers.get(kind)
        if handler is None:
            raise parsing(f"unknown query [{kind}]")
        try:
            return handler(body)
        except SearchError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise parsing(f"[{kind}] malformed query: {exc}") from exc

    # ------------------------------------------------------------------ helpers

    def spec(self, name: str) -> FieldSpec:
        spec = self.mapping.field(name)
        if spec is None:
            raise UnknownField(name, self.mapping.index)
        return spec

    def fields(self, pattern: str) -> list[FieldSpec]:
        if pattern in ("*", "_all"):
            return self.mapping.text_fields()
        if "*" in pattern:
            return [f for f in self.mapping.text_fields() if fnmatch.fnmatchcase(f.name, pattern)]
        return [self.spec(pattern)]

    @staticmethod
    def single(body: Any, key: str = "query") -> tuple[str, dict[str, Any]]:
        if not isinstance(body, dict) or len(body) != 1:
            raise parsing(f"expected one field, got [{body}]")
        ((name, value),) = body.items()
        if not isinstance(value, dict):
            value = {key: value}
        return name, value

    def remember(self, spec: FieldSpec, terms: list[str]) -> None:
        self.terms.setdefault(spec.name, set()).update(terms)

    def value_term(self, spec: FieldSpec, value: Any) -> Any:
        """A term query of one exact value of a non-text field."""
        path = "_kw." + spec.name
        if spec.kind in ("keyword", "ip"):
            self.remember(spec, [str(value)])
            return Q.term_query(
                SCHEMA, path, str(value) if not isinstance(value, bool) else str(value).lower()
            )
        if spec.kind == "long":
            return Q.term_query(SCHEMA, path, int(_number(value, spec)))
        if spec.kind == "double":
            return Q.term_query(SCHEMA, path, float(_number(value, spec)))
        if spec.kind == "boolean":
            return Q.term_query(SCHEMA, path, value in (True, "true"))
        if spec.kind == "date":
            moment = parse_date(value, now=self.now, field=spec.name)
            return self.range_of(spec, {"gte": iso(moment), "lte": iso(moment)})
        raise parsing(f"field [{spec.name}] of type [{spec.kind}] has no exact terms")

    def text_terms(self, spec: FieldSpec, text: Any, *, index_analyzer: bool = False) -> list[str]:
        name = spec.analyzer if index_analyzer else spec.search_analyzer
        terms = analyzer(name).terms(str(text))
        self.remember(spec, terms)
        return terms

    # ------------------------------------------------------------------ full text

    def match(self, body: Any) -> Any:
        name, opts = self.single(body)
        text = opts["query"]
        operator = str(opts.get("operator", "or")).lower()
        queries = []
        for spec in self.fields(name):
            queries.append(self.match_field(spec, text, operator))
        return _any(queries)

    def match_field(self, spec: FieldSpec, text: Any, operator: str) -> Any:
        if spec.kind != "text":
            try:
                return self.value_term(spec, text)
            except SearchError:
                return Q.empty_query()
        terms = self.text_terms(spec, text)
        if not terms:
            return Q.empty_query()
        queries = [Q.term_query(SCHEMA, "_text", term(spec.name, t)) for t in terms]
        if len(queries) == 1:
            return queries[0]
        occur = Occur.Must if operator == "and" else Occur.Should
        return Q.boolean_query([(occur, q) for q in queries])

    def match_phrase(self, body: Any) -> Any:
        name, opts = self.single(body)
        queries = [
            self.phrase_field(spec, opts["query"], int(opts.get("slop", 0)))
            for spec in self.fields(name)
        ]
        return _any(queries)

    def phrase_field(self, spec: FieldSpec, text: Any, slop: int) -> Any:
        if spec.kind != "text":
            return self.value_term(spec, text)
        terms = self.text_terms(spec, text)
        if not terms:
            return Q.empty_query()
        if len(terms) == 1:
            return Q.term_query(SCHEMA, "_text", term(spec.name, terms[0]))
        return Q.phrase_query(SCHEMA, "_text", [term(spec.name, t) for t in terms], slop)

    def multi_match(self, body: dict[str, Any]) -> Any:
        text = body["query"]
        kind = body.get("type", "best_fields")
        operator = str(body.get("operator", "or")).lower()
        queries = []
        for entry in body.get("fields") or ["*"]:
            name, _, boost = str(entry).partition("^")
            for spec in self.fields(name):
                if kind in ("phrase", "phrase_prefix"):
                    q = self.phrase_field(spec, text, int(body.get("slop", 0)))
                else:
                    q = self.match_field(spec, text, operator)
                queries.append(Q.boost_query(q, float(boost)) if boost else q)
        return Q.disjunction_max_query(queries) if queries else Q.empty_query()

    def query_string(self, body: dict[str, Any]) -> Any:
        fields = body.get("fields") or (
            [body["default_field"]] if body.get("default_field") else None
        )
        if isinstance(body.get("query"), str):
            text = body["query"]
            if "flags" in body or "|" in text:  # simple_query_string's operators
                text = text.replace("|", " OR ")
        else:
            raise parsing("[query_string] requires a [query] string")
        dsl = lucene.parse(text, fields, body.get("default_operator", "OR"))
        return self.query(dsl)

    # ------------------------------------------------------------------ exact values

    def term(self, body: Any) -> Any:
        name, opts = self.single(body, "value")
        spec = self.spec(name)
        value = opts["value"]
        if spec.kind == "text":
            self.remember(spec, [str(value)])
            return Q.term_query(SCHEMA, "_text", term(spec.name, str(value)))
        return self.value_term(spec, value)

    def terms_query(self, body: dict[str, Any]) -> Any:
        names = [k for k in body if k != "boost"]
        if len(names) != 1 or not isinstance(body[names[0]], list):
            raise parsing("[terms] query expects one field with a list of values")
        spec = self.spec(names[0])
        values = body[names[0]]
        if spec.kind in ("keyword", "ip") and values:
            self.remember(spec, [str(v) for v in values])
            return Q.term_set_query(SCHEMA, "_kw." + spec.name, [str(v) for v in values])
        return _any([self.term({spec.name: {"value": v}}) for v in values])

    def ids(self, body: dict[str, Any]) -> Any:
        values = [str(v) for v in body["values"]]
        return Q.term_set_query(SCHEMA, "_id", values) if values else Q.empty_query()

    def range(self, body: Any) -> Any:
        name, opts = self.single(body)
        spec = self.spec(name)
        return self.range_of(spec, opts)

    def range_of(self, spec: FieldSpec, opts: dict[str, Any]) -> Any:
        bounds = {
            k: opts[k] for k in ("gt", "gte", "lt", "lte", "from", "to") if opts.get(k) is not None
        }
        if "from" in bounds:
            bounds["gte" if opts.get("include_lower", True) else "gt"] = bounds.pop("from")
        if "to" in bounds:
            bounds["lte" if opts.get("include_upper", True) else "lt"] = bounds.pop("to")
        if spec.kind == "date":
            moments = {k: parse_date(v, now=self.now, field=spec.name) for k, v in bounds.items()}
            if spec.name == self.mapping.time_field:
                return self.time_range(moments)
            values = {k: iso(v) for k, v in moments.items()}
        elif spec.kind in ("long", "double"):
            values = {
                k: repr(float(_number(v, spec))) if spec.kind == "double" else str(_long(v, spec))
                for k, v in bounds.items()
            }
        elif spec.kind in ("keyword", "ip"):
            values = {k: '"' + str(v).replace('"', '\\"') + '"' for k, v in bounds.items()}
        else:
            raise parsing(
                f"field [{spec.name}] of type [{spec.kind}] does not support range queries"
            )
        low = values.get("gte", values.get("gt", "*"))
        high = values.get("lte", values.get("lt", "*"))
        opening = "{" if "gt" in values else "["
        closing = "}" if "lt" in values else "]"
        path = "_kw." + ".".join(_escape(p) for p in spec.name.split("."))
        return PARSER.parse_query(f"{path}:{opening}{low} TO {high}{closing}", ["_kw"])

    def time_range(self, moments: dict[str, datetime]) -> Any:
        lower = moments.get("gte", moments.get("gt"))
        upper = moments.get("lte", moments.get("lt"))
        if lower is not None and (self.time.lower is None or lower > self.time.lower):
            self.time.lower = lower
        if upper is not None and (self.time.upper is None or upper < self.time.upper):
            self.time.upper = upper
        return Q.range_query(
            SCHEMA,
            "_ts",
            tantivy.FieldType.Date,
            _naive(lower) if lower else None,
            _naive(upper) if upper else None,
            include_lower="gt" not in moments,
            include_upper="lt" not in moments,
        )

    def exists(self, body: dict[str, Any]) -> Any:
        name = body["field"]
        spec = self.mapping.field(name)
        source = spec.source if spec else name
        return Q.term_query(SCHEMA, "_kw._f", source)

    # ------------------------------------------------------------------ patterns

    def prefix(self, body: Any) -> Any:
        name, opts = self.single(body, "value")
        return self.pattern(self.spec(name), re.escape(str(opts["value"])) + ".*", opts)

    def wildcard(self, body: Any) -> Any:
        name, opts = self.single(body, "value")
        value = str(opts.get("value", opts.get("wildcard", "")))
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value)
        queries = [self.pattern(spec, regex, opts) for spec in self.fields(name)]
        return _any(queries)

    def regexp(self, body: Any) -> Any:
        name, opts = self.single(body, "value")
        return self.pattern(self.spec(name), str(opts["value"]), opts)

    def pattern(self, spec: FieldSpec, regex: str, opts: dict[str, Any]) -> Any:
        if spec.kind == "text":
            regex = regex.lower()
        elif opts.get("case_insensitive"):
            regex = "(?i)" + regex
        prefix = re.escape(spec.name) + re.escape(SEP)
        return Q.regex_query(SCHEMA, "_text", prefix + regex)

    # ------------------------------------------------------------------ bool

    def bool(self, body: dict[str, Any]) -> Any:
        clauses: list[tuple[Any, Any]] = []
        for key, occur in (
            ("must", Occur.Must),
            ("filter", Occur.Must),
            ("should", Occur.Should),
            ("must_not", Occur.MustNot),
        ):
            items = body.get(key) or []
            if isinstance(items, dict):
                items = [items]
            for item in items:
                q = self.query(item)
                if key == "filter":
                    q = Q.const_score_query(q, 0.0)
                clauses.append((occur, q))
        if not clauses:
            return Q.all_query()
        has_must = any(o != Occur.Should for o, _ in clauses)
        should = [c for c in clauses if c[0] == Occur.Should]
        minimum = body.get("minimum_should_match")
        if minimum is None:
            minimum = 0 if has_must else (1 if should else 0)
        minimum = _minimum(minimum, len(should))
        if all(o == Occur.MustNot for o, _ in clauses):
            clauses.append((Occur.Must, Q.all_query()))
        if should and minimum > 0:
            return Q.boolean_query(clauses, minimum)
        return Q.boolean_query(clauses)


def _any(queries: list[Any]) -> Any:
    if not queries:
        return Q.empty_query()
    if len(queries) == 1:
        return queries[0]
    return Q.boolean_query([(Occur.Should, q) for q in queries])


def _minimum(value: Any, count: int) -> int:
    text = str(value)
    if text.endswith("%"):
        return int(count * int(text[:-1]) / 100)
    number = int(text)
    return number if number >= 0 else max(count + number, 0)


def _number(value: Any, spec: FieldSpec) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SearchError(
            400,
            "query_shard_exception",
            f"failed to create query: for input string [{value}] of field [{spec.name}] "
            f"of type [{spec.kind}]",
        ) from None


def _long(value: Any, spec: FieldSpec) -> int:
    return int(_number(value, spec))


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _escape(part: str) -> str:
    return re.sub(r"([+\-&|!(){}\[\]^\"~*?:\\/ .])", r"\\\1", part)
