"""Turn DuckDB's errors into messages that point at the wrong part of the SQL."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

import duckdb

from haeryu.stores.warehouse.errors import QueryError

_UNKNOWN_TABLE = re.compile(r'Table with name "?([^"!\s]+)"? does not exist')
_UNKNOWN_COLUMN = re.compile(r'Referenced column "([^"]+)" not found')
_CANDIDATES = re.compile(r"Candidate bindings: (.*)")


def caret(sql: str, position: int, length: int = 1) -> str:
    """Two lines: the SQL line holding ``position`` and a caret under it."""
    start = sql.rfind("\n", 0, position) + 1
    end = sql.find("\n", position)
    end = len(sql) if end < 0 else end
    line_no = sql.count("\n", 0, position) + 1
    prefix = f"LINE {line_no}: "
    underline = " " * (len(prefix) + position - start) + "^" * max(1, length)
    return f"{prefix}{sql[start:end]}\n{underline}"


def find_name(sql: str, name: str) -> int | None:
    """Where ``name`` first appears in ``sql`` as a whole word (quoted or not)."""
    match = re.search(rf'(?<![\w.]){re.escape(name)}(?!\w)|"{re.escape(name)}"', sql, re.I)
    if match is None:  # qualified, as in t.name
        match = re.search(rf"\.{re.escape(name)}(?!\w)", sql, re.I)
        return None if match is None else match.start() + 1
    return match.start()


def nearest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name``, if any is close enough."""
    pool = list(dict.fromkeys(candidates))
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def _with_caret(message: str, sql: str, name: str) -> tuple[str, int | None]:
    position = find_name(sql, name)
    if position is None:
        return message, None
    length = len(name) + (2 if sql[position : position + 1] == '"' else 0)
    return f"{message}\n{caret(sql, position, length)}", position


def explain(
    error: duckdb.Error,
    sql: str,
    *,
    tables: Mapping[str, list[str]],
    lake: str,
) -> QueryError:
    """A :class:`QueryError` for ``error``; ``tables`` maps each lake table to its columns."""
    text = str(error)
    table = _UNKNOWN_TABLE.search(text)
    if isinstance(error, duckdb.CatalogException) and table:
        name = table.group(1)
        listing = ", ".join(tables) if tables else "(none)"
        message = f"unknown table {name!r}"
        guess = nearest(name, tables)
        if guess:
            message += f" (did you mean {guess!r}?)"
        message, position = _with_caret(message, sql, name)
        message += f"\ntables in the lake {lake}: {listing}"
        return QueryError(message, sql=sql, position=position)
    column = _UNKNOWN_COLUMN.search(text)
    if isinstance(error, duckdb.BinderException) and column:
        name = column.group(1)
        bound = _CANDIDATES.search(text)
        candidates = (
            [c.strip().strip('"').split(".")[-1] for c in bound.group(1).split(",")]
            if bound
            else [c for cols in tables.values() for c in cols]
        )
        message = f"unknown column {name!r}"
        guess = nearest(name, candidates)
        if guess:
            message += f" (did you mean {guess!r}?)"
        message, position = _with_caret(message, sql, name)
        if candidates:
            message += f"\ncolumns in scope: {', '.join(dict.fromkeys(candidates))}"
        return QueryError(message, sql=sql, position=position)
    # DuckDB already draws its own LINE/caret for parser errors; keep it as is.
    return QueryError(text, sql=sql, position=_duckdb_position(error))


def _duckdb_position(error: duckdb.Error) -> int | None:
    info = getattr(error, "extra_info", None) or {}
    try:
        return int(info["position"]) if "position" in info else None
    except (TypeError, ValueError):
        return None


__all__ = ["caret", "explain", "find_name", "nearest"]
