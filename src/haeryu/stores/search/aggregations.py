"""Elasticsearch aggregations over time partitions: field names mapped to tantivy's
``_kw`` paths, run per partition by tantivy, merged here.

Merging: bucket aggregations add ``doc_count`` per key (terms keep the top ``size``
after merging, ordered by count, ties by key); ``avg`` runs as ``stats`` so sums and
counts merge exactly; ``cardinality`` runs as a ``terms`` of every value, merged as a
set (exact; tantivy's HyperLogLog sketches cannot be merged from their results).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from haeryu.stores.search.dates import epoch_millis, iso, parse_date
from haeryu.stores.search.errors import SearchError, parsing
from haeryu.stores.search.mapping import Mapping

METRICS = ("min", "max", "avg", "sum", "value_count", "stats", "cardinality")
BUCKETS = ("terms", "date_histogram", "histogram", "range")
_UNITS = {
    "second": "1s",
    "1s": "1s",
    "minute": "1m",
    "1m": "1m",
    "hour": "1h",
    "1h": "1h",
    "day": "1d",
    "1d": "1d",
    "week": "7d",
    "1w": "7d",
}
_CARDINALITY_TERMS = 65_535


def translate(aggs: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """The tantivy request of ES ``aggs`` for one index."""
    if not isinstance(aggs, dict):
        raise parsing("[aggs] must be an object")
    out = {}
    for name, body in aggs.items():
        if not isinstance(body, dict):
            raise parsing(f"aggregation [{name}] must be an object")
        kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise parsing(f"expected one aggregation type in [{name}], found {kinds}")
        kind = kinds[0]
        opts = dict(body[kind])
        if kind not in METRICS + BUCKETS:
            raise parsing(f"unknown aggregation type [{kind}] in [{name}]")
        if "field" not in opts:
            raise parsing(f"aggregation [{name}] requires a [field]")
        opts["field"] = _path(opts["field"], mapping, kind)
        if kind == "date_histogram" and opts["field"] == f"_kw.{mapping.time_field}":
            opts["field"] = "_ts"  # the time field's own fast column: several times faster
        sub = body.get("aggs") or body.get("aggregations")
        if kind == "avg":
            kind = "stats"
        elif kind == "cardinality":
            kind, opts = "terms", {"field": opts["field"], "size": _CARDINALITY_TERMS}
        elif kind in ("min", "max", "sum", "value_count"):
            kind, opts = "stats", {"field": opts["field"]}
        elif kind == "terms":
            size = int(opts.get("size", 10))
            opts = {
                k: v
                for k, v in opts.items()
                if k in ("field", "size", "min_doc_count", "order", "missing")
            }
            opts["size"] = size
            opts["segment_size"] = max(size * 10, 100)
        elif kind == "date_histogram":
            opts = _date_histogram(opts, name)
        elif kind == "histogram":
            opts = {
                k: v
                for k, v in opts.items()
                if k
                in (
                    "field",
                    "interval",
                    "offset",
                    "min_doc_count",
                    "extended_bounds",
                    "hard_bounds",
                )
            }
        elif kind == "range":
            opts = {"field": opts["field"], "ranges": opts["ranges"], "keyed": False}
        request: dict[str, Any] = {kind: opts}
        if sub and kind in BUCKETS:
            request["aggs"] = translate(sub, mapping)
        out[name] = request
    return out


def _path(name: str, mapping: Mapping, kind: str) -> str:
    spec = mapping.field(name)
    if spec is None:
        raise SearchError(
            400,
            "illegal_argument_exception",
            f"unknown field [{name}] in aggregation [{kind}]",
            index=mapping.index,
        )
    if spec.kind == "text":
        raise SearchError(
            400,
            "illegal_argument_exception",
            f"Text fields are not optimised for operations that require per-document field "
            f"data like aggregations and sorting, so these operations are disabled by "
            f"default. Please use a keyword field instead ([{name}.keyword]).",
            index=mapping.index,
        )
    return "_kw." + spec.name


def _bound(value: Any) -> Any:
    return value if isinstance(value, int | float) else epoch_millis(parse_date(value))


def _date_histogram(opts: dict[str, Any], name: str) -> dict[str, Any]:
    interval = opts.get("fixed_interval") or opts.get("calendar_interval") or opts.get("interval")
    if interval is None:
        raise parsing(f"[date_histogram] [{name}] needs a [fixed_interval] or [calendar_interval]")
    interval = _UNITS.get(str(interval), str(interval))
    if interval.endswith(("M", "y", "q")) or interval in ("month", "year", "quarter"):
        raise SearchError(
            400,
            "illegal_argument_exception",
            f"calendar interval [{interval}] is not supported; use a fixed_interval",
        )
    out: dict[str, Any] = {"field": opts["field"], "fixed_interval": interval}
    for key in ("min_doc_count", "offset"):
        if key in opts:
            out[key] = opts[key]
    # ES only uses extended_bounds when empty buckets are wanted (min_doc_count 0);
    # tantivy refuses the pair, so Kibana's (min_doc_count 1 + bounds) drops them.
    for key in ("extended_bounds", "hard_bounds"):
        bounds = opts.get(key)
        if bounds and (key == "hard_bounds" or int(opts.get("min_doc_count", 0)) == 0):
            out[key] = {k: _bound(v) for k, v in bounds.items() if v is not None}
    return out


def merge(aggs: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge per-partition tantivy results of ``aggs`` (the ES request) into ES's answer."""
    out = {}
    for name, body in aggs.items():
        kind = next(k for k in body if k not in ("aggs", "aggregations", "meta"))
        sub = body.get("aggs") or body.get("aggregations") or {}
        parts = [r[name] for r in results if name in r]
        out[name] = _merge_one(kind, body[kind], sub, parts)
    return out


def _merge_one(
    kind: str, opts: dict[str, Any], sub: dict[str, Any], parts: list[dict[str, Any]]
) -> dict[str, Any]:
    if kind in ("min", "max", "sum", "value_count", "avg", "stats"):
        count = sum(int(p.get("count", 0)) for p in parts)
        total = sum(float(p.get("sum") or 0.0) for p in parts)
        mins = [p["min"] for p in parts if p.get("min") is not None]
        maxs = [p["max"] for p in parts if p.get("max") is not None]
        stats = {
            "count": count,
            "min": min(mins) if mins else None,
            "max": max(maxs) if maxs else None,
            "avg": total / count if count else None,
            "sum": total,
        }
        if kind == "stats":
            return stats
        if kind == "value_count":
            return {"value": count}
        return {"value": stats[kind]}
    if kind == "cardinality":
        keys = {b["key"] for p in parts for b in p.get("buckets", [])}
        return {"value": len(keys)}
    buckets: dict[Any, list[dict[str, Any]]] = {}
    for p in parts:
        for b in p.get("buckets", []):
            buckets.setdefault(b["key"], []).append(b)
    merged = []
    for key, group in buckets.items():
        bucket: dict[str, Any] = {"key": key, "doc_count": sum(int(b["doc_count"]) for b in group)}
        for extra in ("key_as_string", "from", "to"):
            if extra in group[0]:
                bucket[extra] = group[0][extra]
        if sub:
            bucket.update(merge(sub, group))
        merged.append(bucket)
    if kind == "terms":
        size = int(opts.get("size", 10))
        minimum = int(opts.get("min_doc_count", 1))
        merged = [b for b in merged if b["doc_count"] >= minimum]
        _order_terms(merged, opts.get("order"))
        other = sum(b["doc_count"] for b in merged[size:])
        return {
            "doc_count_error_upper_bound": 0,
            "sum_other_doc_count": other,
            "buckets": merged[:size],
        }
    if kind in ("date_histogram", "histogram"):
        merged.sort(key=lambda b: b["key"])
        if kind == "date_histogram":
            epoch = opts.get("format") == "epoch_millis"
            for b in merged:
                b["key"] = int(b["key"])
                b["key_as_string"] = str(b["key"]) if epoch else _iso_millis(b["key"])
        return {"buckets": merged}
    if kind == "range":
        order = [_range_key(r) for r in opts.get("ranges", [])]
        merged.sort(key=lambda b: order.index(b["key"]) if b["key"] in order else len(order))
        return {"buckets": merged}
    return {"buckets": merged}


def _order_terms(buckets: list[dict[str, Any]], order: Any) -> None:
    """Sort merged terms buckets as ES does: ``_count`` desc (ties by key) by default."""
    entries = order if isinstance(order, list) else [order] if order else []
    spec = (
        next(iter(entries[0].items()))
        if entries and isinstance(entries[0], dict)
        else ("_count", "desc")
    )
    key, direction = spec
    reverse = str(direction).lower() == "desc"
    if key == "_key":
        buckets.sort(key=lambda b: _sort_key(b["key"]), reverse=reverse)
    else:
        buckets.sort(key=lambda b: _sort_key(b["key"]))
        buckets.sort(key=lambda b: b["doc_count"], reverse=reverse)


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _iso_millis(millis: int) -> str:
    return iso(datetime.fromtimestamp(millis / 1000, UTC))


def _range_key(r: dict[str, Any]) -> str:
    if "key" in r:
        return str(r["key"])
    low = "*" if r.get("from") is None else _num(r["from"])
    high = "*" if r.get("to") is None else _num(r["to"])
    return f"{low}-{high}"


def _num(value: Any) -> str:
    return str(float(value))
