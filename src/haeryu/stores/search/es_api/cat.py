"""``_cat/indices``: a table for people (``?v``) or JSON (``?format=json``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from haeryu.stores.search.es_api.errors import illegal_argument

COLUMNS = (
    "health",
    "status",
    "index",
    "uuid",
    "pri",
    "rep",
    "docs.count",
    "docs.deleted",
    "store.size",
    "pri.store.size",
    "dataset.size",
)
_BYTE_UNITS = (("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10))


def human_bytes(n: int, unit: str | None = None) -> str:
    """Bytes as Elasticsearch's cat API prints them (``1.2mb``), or in ``unit`` (``bytes=``)."""
    if unit in ("b", "bytes"):
        return str(n)
    for name, size in _BYTE_UNITS:
        if unit == name:
            return str(n // size)
        if unit is None and n >= size:
            return _one_decimal(n / size) + name
    if unit == "kb":
        return str(n // 1024)
    return f"{n}b"


def _one_decimal(value: float) -> str:
    # Elasticsearch truncates to one decimal and drops ".0": 1.95 -> "1.9", 2.0 -> "2"
    tenths = int(value * 10)
    whole, frac = divmod(tenths, 10)
    return f"{whole}.{frac}" if frac else str(whole)


def index_row(name: str, docs: int, size_bytes: int, unit: str | None) -> dict[str, str]:
    """One row; one primary, no replicas: a single node is green."""
    size = human_bytes(size_bytes, unit)
    return {
        "health": "green",
        "status": "open",
        "index": name,
        "uuid": name,
        "pri": "1",
        "rep": "0",
        "docs.count": str(docs),
        "docs.deleted": "0",
        "store.size": size,
        "pri.store.size": size,
        "dataset.size": size,
    }


def render(
    rows: list[dict[str, str]], params: dict[str, str]
) -> tuple[str | list[dict[str, str]], str]:
    """Rows as the cat API prints them, and the media type."""
    columns = _columns(params.get("h"))
    if "s" in params:
        for key in reversed(params["s"].split(",")):
            field, _, order = key.partition(":")
            rows = sorted(rows, key=lambda r: _sort_key(r.get(field, "")), reverse=order == "desc")
    picked = [{c: r.get(c, "") for c in columns} for r in rows]
    fmt = params.get("format", "text")
    if fmt == "json":
        return picked, "application/json"
    if fmt != "text":
        raise illegal_argument(f"format [{fmt}] is not supported by _cat: use text or json")
    header = "v" in params and params["v"].lower() != "false"
    return _table(picked, columns, header), "text/plain; charset=UTF-8"


def _sort_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _columns(h: str | None) -> list[str]:
    if not h:
        return list(COLUMNS)
    wanted = [c.strip() for c in h.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in COLUMNS]
    if unknown:
        raise illegal_argument(f"unknown _cat/indices column(s) {unknown}; known: {list(COLUMNS)}")
    return wanted


def _table(rows: Iterable[dict[str, str]], columns: list[str], header: bool) -> str:
    lines = [[r[c] for c in columns] for r in rows]
    if header:
        lines.insert(0, list(columns))
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "".join(
        " ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )


def stats_rows(stats: Any, unit: str | None) -> list[dict[str, str]]:
    """Rows from the store's per-index stats (``[{"index", "docs_count", "size_in_bytes"}]``)."""
    rows = []
    for name, entry in sorted(_stats_items(stats)):
        rows.append(index_row(name, _docs(entry), _size(entry), unit))
    return rows


def _stats_items(stats: Any) -> list[tuple[str, Any]]:
    if isinstance(stats, dict) and isinstance(stats.get("indices"), dict):
        stats = stats["indices"]
    if isinstance(stats, dict):
        return list(stats.items())
    return [(s["index"], s) for s in stats]


def _docs(entry: Any) -> int:
    for path in (("docs_count",), ("docs", "count"), ("docs",)):
        value = _dig(entry, path)
        if isinstance(value, int):
            return value
    return 0


def _size(entry: Any) -> int:
    for path in (("size_in_bytes",), ("store", "size_in_bytes")):
        value = _dig(entry, path)
        if isinstance(value, int):
            return value
    return 0


def _dig(entry: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(key)
    return entry
