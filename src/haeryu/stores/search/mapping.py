"""Mappings: Elasticsearch's field types and analyzers, explicit or inferred.

A :class:`Mapping` keeps the ES ``mappings`` body (``properties``, ``dynamic``) and the
flat list of searchable :class:`FieldSpec` s derived from it (multi-fields such as
``message.keyword`` included).  :meth:`Mapping.infer` adds fields for values it has not
seen, the way Elasticsearch's dynamic mapping does: booleans, ``long``, ``float``,
dates (ISO strings), and other strings as ``text`` with a ``keyword`` sub-field.
Values of unmapped fields (``dynamic: false``) stay in ``_source`` only.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from haeryu.stores.search.analysis import ANALYZERS
from haeryu.stores.search.errors import mapper_parsing

KINDS = {
    "text": "text",
    "match_only_text": "text",
    "keyword": "keyword",
    "constant_keyword": "keyword",
    "wildcard": "keyword",
    "long": "long",
    "integer": "long",
    "short": "long",
    "byte": "long",
    "unsigned_long": "long",
    "double": "double",
    "float": "double",
    "half_float": "double",
    "scaled_float": "double",
    "date": "date",
    "date_nanos": "date",
    "boolean": "boolean",
    "ip": "ip",
}
TIME_FIELDS = ("@timestamp", "timestamp", "time", "_event_time")
_DATE_LIKE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One searchable field: ``name`` as queried, ``source`` the ``_source`` path."""

    name: str
    source: str
    kind: str  # text, keyword, long, double, date, boolean, ip
    analyzer: str = "standard"
    search_analyzer: str = "standard"
    ignore_above: int | None = None


class Mapping:
    """An index's mapping: the ES body and the fields derived from it."""

    def __init__(
        self,
        mappings: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        *,
        index: str | None = None,
        time_field: str | None = None,
    ) -> None:
        self.index = index
        self.body = copy.deepcopy(mappings or {})
        self.body.setdefault("properties", {})
        self.settings = copy.deepcopy(settings or {})
        self.analyzers = _custom_analyzers(self.settings, index)
        # Korean-first: text fields without an analyzer get nori (which also lower-cases
        # and stems English); settings.analysis.analyzer.default overrides it as in ES.
        self.default_analyzer = self.analyzers.get("default", "nori")
        self.fields: dict[str, FieldSpec] = {}
        self._walk(self.body["properties"], "")
        self.time_field = time_field or self._pick_time_field()

    # ------------------------------------------------------------------ building

    @property
    def dynamic(self) -> str:
        """``true``, ``false`` or ``strict``."""
        return str(self.body.get("dynamic", "true")).lower()

    def _walk(self, properties: dict[str, Any], prefix: str) -> None:
        if not isinstance(properties, dict):
            raise mapper_parsing("[properties] must be an object", self.index)
        for name, spec in properties.items():
            path = prefix + name
            if not isinstance(spec, dict):
                raise mapper_parsing(f"mapping of field [{path}] must be an object", self.index)
            if "properties" in spec or spec.get("type") in ("object", "nested"):
                self._walk(spec.get("properties", {}), path + ".")
                continue
            self._add(path, path, spec)
            for sub, subspec in (spec.get("fields") or {}).items():
                self._add(f"{path}.{sub}", path, subspec)

    def _add(self, name: str, source: str, spec: dict[str, Any]) -> None:
        es_type = spec.get("type", "object")
        kind = KINDS.get(es_type)
        if kind is None:
            raise mapper_parsing(
                f"no handler for type [{es_type}] declared on field [{name}]", self.index
            )
        analyzer = self._analyzer(spec.get("analyzer"), name)
        search = (
            self._analyzer(spec.get("search_analyzer"), name)
            if spec.get("search_analyzer")
            else analyzer
        )
        ignore = spec.get("ignore_above")
        self.fields[name] = FieldSpec(name, source, kind, analyzer, search, ignore)

    def _analyzer(self, name: str | None, field: str) -> str:
        if name is None:
            return self.default_analyzer
        if name in self.analyzers:
            return self.analyzers[name]
        if name in ANALYZERS:
            return name
        raise mapper_parsing(f"analyzer [{name}] has not been configured in mappings", self.index)

    def _pick_time_field(self) -> str | None:
        dates = [f.name for f in self.fields.values() if f.kind == "date"]
        for name in TIME_FIELDS:
            if name in dates:
                return name
        return dates[0] if dates else None

    # ------------------------------------------------------------------ reading

    def es(self) -> dict[str, Any]:
        """The ES ``mappings`` body."""
        return copy.deepcopy(self.body)

    def field(self, name: str) -> FieldSpec | None:
        """The field queried as ``name`` (``_time`` is the index's time field)."""
        if name == "_time" and self.time_field:
            name = self.time_field
        return self.fields.get(name)

    def text_fields(self) -> list[FieldSpec]:
        """Fields a query without a field searches (ES ``index.query.default_field: *``)."""
        return [f for f in self.fields.values() if f.kind in ("text", "keyword", "ip")]

    # ------------------------------------------------------------------ dynamic mapping

    def infer(self, source: dict[str, Any]) -> bool:
        """Add fields for unseen values of ``source``; True when the mapping changed."""
        if self.dynamic != "true":
            if self.dynamic == "strict":
                for path, _ in flatten(source):
                    if path not in self.fields and not self._is_object(path):
                        raise mapper_parsing(
                            f"mapping set to strict, dynamic introduction of [{path}] "
                            "within [_doc] is not allowed",
                            self.index,
                        )
            return False
        if source.keys() <= self.fields.keys():
            return False  # only known leaf fields: nothing to infer
        changed = False
        for path, value in flatten(source):
            if path in self.fields or self._covered(path):
                continue
            spec = _dynamic_spec(value)
            if spec is None:
                continue
            self._put(path, spec)
            self._add(path, path, spec)
            for sub, subspec in (spec.get("fields") or {}).items():
                self._add(f"{path}.{sub}", path, subspec)
            changed = True
        if changed and self.time_field is None:
            self.time_field = self._pick_time_field()
        return changed

    def _covered(self, path: str) -> bool:
        # A leaf under a field that is not an object (e.g. "a.b" when "a" is keyword).
        parts = path.split(".")
        return any(".".join(parts[:i]) in self.fields for i in range(1, len(parts)))

    def _is_object(self, path: str) -> bool:
        return any(name.startswith(path + ".") for name in self.fields)

    def _put(self, path: str, spec: dict[str, Any]) -> None:
        properties = self.body["properties"]
        parts = path.split(".")
        for part in parts[:-1]:
            node = properties.setdefault(part, {"properties": {}})
            properties = node.setdefault("properties", {})
        properties[parts[-1]] = spec


def flatten(source: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted path, value)`` of every leaf; a list yields each of its items."""
    for key, value in source.items():
        path = prefix + key
        if isinstance(value, dict):
            yield from flatten(value, path + ".")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from flatten(item, path + ".")
                elif item is not None:
                    yield path, item
        elif value is not None:
            yield path, value


def _dynamic_spec(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        if _DATE_LIKE.match(value):
            return {"type": "date"}
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    return None


def _custom_analyzers(settings: dict[str, Any], index: str | None) -> dict[str, str]:
    """ES custom analyzer names -> the analysis they amount to here."""
    analysis = settings.get("analysis") or (settings.get("index") or {}).get("analysis") or {}
    found: dict[str, str] = {}
    for name, spec in (analysis.get("analyzer") or {}).items():
        kind = spec.get("type", "custom")
        tokenizer = spec.get("tokenizer", "")
        tokenizer_type = ((analysis.get("tokenizer") or {}).get(tokenizer) or {}).get(
            "type", tokenizer
        )
        filters = spec.get("filter", [])
        if kind == "nori" or tokenizer_type == "nori_tokenizer":
            found[name] = "nori"
        elif kind in ANALYZERS:
            found[name] = kind
        elif tokenizer_type in ("whitespace", "keyword"):
            found[name] = tokenizer_type
        elif tokenizer_type == "standard" or kind == "custom":
            stemmed = any("stem" in str(f) or "porter" in str(f) for f in filters)
            found[name] = "english" if stemmed else "standard"
        else:
            raise mapper_parsing(f"unknown analyzer type [{kind}] for [{name}]", index)
    return found
