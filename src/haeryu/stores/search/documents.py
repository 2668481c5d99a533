"""Turning a ``_source`` into what a partition indexes, following the mapping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from haeryu.stores.search.analysis import analyzer
from haeryu.stores.search.dates import iso, parse_date
from haeryu.stores.search.errors import SearchError, mapper_parsing
from haeryu.stores.search.mapping import FieldSpec, Mapping, flatten
from haeryu.stores.search.partition import SEP, SPACE


@dataclass(slots=True)
class Prepared:
    """A document ready for :meth:`Partition.add`."""

    text: str
    kw: dict[str, Any]
    ts: datetime | None


def prepare_batch(mapping: Mapping, sources: list[dict[str, Any]]) -> None:
    """Analyze the Korean words of a batch at once (kiwi's threads, one call)."""
    by_analyzer: dict[str, list[str]] = {}
    text_fields = [f for f in mapping.fields.values() if f.kind == "text"]
    for spec in text_fields:
        texts = by_analyzer.setdefault(spec.analyzer, [])
        if "." not in spec.source:
            texts.extend(
                v for v in (source.get(spec.source) for source in sources) if isinstance(v, str)
            )
            continue
        for source in sources:
            texts.extend(v for p, v in flatten(source) if p == spec.source and isinstance(v, str))
    for name, texts in by_analyzer.items():
        if texts:
            analyzer(name).prepare(texts)


def prepare(mapping: Mapping, source: dict[str, Any]) -> Prepared:
    """Terms, typed values and time of one document; 400 for a value its type refuses."""
    words: list[str] = []
    kw: dict[str, Any] = {}
    present: list[str] = []
    ts: datetime | None = None
    plan = _plan(mapping)
    time_field = mapping.time_field
    for path, value in _leaves(source):
        steps = plan.get(path)
        if not steps:
            continue
        present.append(path)
        for spec, prefix, text_analyzer in steps:
            kind = spec.kind
            if text_analyzer is not None:
                text = value if isinstance(value, str) else str(value)
                words.extend([prefix + t for t in text_analyzer.terms(text)])
                continue
            if kind == "keyword" and isinstance(value, str):
                if spec.ignore_above is not None and len(value) > spec.ignore_above:
                    continue
                words.append(prefix + value.replace(" ", SPACE)[:4000])
                _put(kw, spec.name, value)
                continue
            if kind == "date":
                moment = _date(value, spec.name, mapping)
                if spec.name == time_field and ts is None:
                    ts = moment
                rfc3339 = isinstance(value, str) and value[10:11] == "T" and moment.tzinfo
                _put(kw, spec.name, value if rfc3339 and value[-1] != "z" else iso(moment))
                continue
            typed = _typed(spec, value, mapping)
            if typed is None:
                continue
            if kind in ("keyword", "ip"):
                words.append(prefix + typed.replace(" ", SPACE)[:4000])
            _put(kw, spec.name, typed)
    if present:
        kw["_f"] = present
    return Prepared(" ".join(words), kw, ts)


Step = tuple[FieldSpec, str, Any]


def _plan(mapping: Mapping) -> dict[str, list[Step]]:
    """Per ``_source`` path: the fields it feeds, their term prefix and analyzer."""
    cached = getattr(mapping, "_plan", None)
    if cached is None or cached[0] != len(mapping.fields):
        by: dict[str, list[Step]] = {}
        for spec in mapping.fields.values():
            text = analyzer(spec.analyzer) if spec.kind == "text" else None
            by.setdefault(spec.source, []).append((spec, spec.name + SEP, text))
        cached = (len(mapping.fields), by)
        mapping._plan = cached  # type: ignore[attr-defined]
    return cached[1]


def _leaves(source: dict[str, Any]) -> Any:
    # Flat documents (the common case for logs) skip the generic walk.
    for value in source.values():
        if isinstance(value, dict | list):
            return flatten(source)
    return [(k, v) for k, v in source.items() if v is not None]


def _date(value: Any, name: str, mapping: Mapping) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return parse_date(value, field=name)
    except SearchError as exc:
        raise mapper_parsing(
            f"failed to parse field [{name}] of type [date] in document: {exc.reason}",
            mapping.index,
        ) from exc


def _typed(spec: FieldSpec, value: Any, mapping: Mapping) -> Any:
    kind = spec.kind
    try:
        if kind == "text":
            return value if isinstance(value, str) else str(value)
        if kind in ("keyword", "ip"):
            text = value if isinstance(value, str) else _scalar_text(value)
            if spec.ignore_above is not None and len(text) > spec.ignore_above:
                return None
            return text
        if kind == "long":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                return int(value)
            return int(value)
        if kind == "double":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if value in ("true", "false"):
                return value == "true"
            raise ValueError
        if kind == "date":
            return iso(parse_date(value, field=spec.name))
    except (ValueError, TypeError, OverflowError):
        pass
    except Exception as exc:  # a date that does not parse
        raise mapper_parsing(
            f"failed to parse field [{spec.name}] of type [{kind}]: {exc}", mapping.index
        ) from exc
    raise mapper_parsing(
        f"failed to parse field [{spec.name}] of type [{kind}] in document: "
        f"value [{value}] is not a {kind}",
        mapping.index,
    )


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _put(kw: dict[str, Any], path: str, value: Any) -> None:
    if "." not in path and path not in kw:
        kw[path] = value
        return
    node = kw
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    existing = node.get(last)
    if existing is None:
        node[last] = value
    elif isinstance(existing, list):
        existing.append(value)
    else:
        node[last] = [existing, value]
