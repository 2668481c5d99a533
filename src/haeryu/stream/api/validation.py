"""A mistake in the pipeline is not a bad record: finding and describing it.

An operator that fails on an *empty* frame of its input's columns (a misspelled column,
a cast no value could survive) would fail on every record; sending each to the
dead-letter topic would hide the mistake.  When a source declares a schema, every
expression is tried on an empty frame as the pipeline is declared, and a mistake raises
:class:`~haeryu.stream.errors.PlanError` at once.  Without a schema the executor makes
the same test the first time an operator fails on a batch, and raises
:class:`~haeryu.stream.errors.OperatorError`.  Both messages come from
:func:`describe_mistake`: the operator, the column that is missing (and the nearest
existing name) or the types of the columns it reads, the user's function or expression,
and the line of the user's code that declared it.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from typing import Any

import polars as pl

from haeryu.stream.api import nodes as p
from haeryu.stream.columns import (
    EVENT_TIME,
    HEADERS,
    KEY,
    METADATA,
    OFFSET,
    PARTITION,
    TIMESTAMP,
    TOPIC,
)
from haeryu.stream.errors import PlanError

_ENGINE = "haeryu.stream."


def declared_at() -> str | None:
    """``file:line`` of the first caller outside the stream engine (the user's code)."""
    frame = sys._getframe(1)
    while frame is not None:
        if not str(frame.f_globals.get("__name__", "")).startswith(_ENGINE):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def function_of(fn: Callable[..., Any]) -> str:
    """``module.qualname (file:line)`` of a user function."""
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    code = getattr(fn, "__code__", None)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code is not None else name


def what_runs(node: p.Node) -> str:
    """The user's function or expressions an operator runs, for error messages."""
    fn = getattr(node, "fn", None)
    if fn is not None:
        return f"function {function_of(fn)}"
    if isinstance(node, p.FilterNode):
        return f"predicate {node.predicate}"
    if isinstance(node, p.SelectNode):
        return f"expressions {', '.join(str(e) for e in node.exprs)}"
    if isinstance(node, p.ExplodeNode | p.KeyByNode):
        return f"columns {', '.join(node.columns)}"
    return node.label


def columns_read(node: p.Node) -> list[str]:
    """Columns an operator's expressions read (empty when it runs opaque code)."""
    exprs: list[pl.Expr] = []
    if isinstance(node, p.FilterNode):
        exprs = [node.predicate]
    elif isinstance(node, p.SelectNode):
        exprs = list(node.exprs)
    elif isinstance(node, p.ExplodeNode | p.KeyByNode):
        return list(node.columns)
    elif isinstance(node, p.TopicSinkNode | p.RouteNode):
        exprs = [node.key] if node.key is not None else []
        if isinstance(node, p.RouteNode):
            exprs.append(pl.col(node.column))
    elif isinstance(node, p.WindowNode):
        exprs = [a.input for a in node.aggregates if a.input is not None]
        exprs += [pl.col(k) for k in node.keys]
        if node.time_column:
            exprs.append(pl.col(node.time_column))
    elif isinstance(node, p.TableJoinNode):
        return list(node.on)
    names: list[str] = []
    for expr in exprs:
        names += [n for n in expr.meta.root_names() if n not in names]
    return names


def describe_mistake(node: p.Node, schema: pl.Schema, error: BaseException) -> str:
    """Why ``node`` cannot run on any frame with ``schema``, in words a user can act on."""
    lines = [f"operator [{node.id}] {node.label} fails on every batch (even an empty one)"]
    if node.declared_at:
        lines[0] += f", declared at {node.declared_at}"
    lines[0] += ": a mistake in the pipeline, not a bad record."
    read = columns_read(node)
    user = [c for c in schema if c not in METADATA and not c.startswith("__")]
    for name in read:
        if name in schema:
            continue
        near = difflib.get_close_matches(name, list(schema), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        lines.append(f"column {name!r} is not in its input{hint}")
    if all(name in schema for name in read):
        typed = [f"{name} ({schema[name]})" for name in read]
        if typed:
            lines.append(f"it reads {', '.join(typed)}")
    lines.append(f"it runs {what_runs(node)}")
    lines.append(f"input columns: {', '.join(f'{c} ({schema[c]})' for c in user) or 'none'}")
    lines.append(f"Polars says: {type(error).__name__}: {_first_line(error)}")
    return "\n  ".join(lines)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def source_schema(node: p.SourceNode) -> pl.Schema | None:
    """Columns of the frames a source produces, when its format has a schema."""
    columns = getattr(node.format, "columns", None)
    dtypes = getattr(columns, "dtypes", None)
    if not isinstance(dtypes, dict):
        return None
    schema = dict(dtypes)
    schema.update(
        {
            PARTITION: pl.Int32(),
            OFFSET: pl.Int64(),
            TOPIC: pl.String(),
            KEY: pl.Binary() if node.key_format == "bytes" else pl.String(),
            TIMESTAMP: pl.Datetime("ms", "UTC"),
            EVENT_TIME: pl.Int64(),
        }
    )
    if node.headers:
        schema[HEADERS] = pl.List(pl.Struct({"key": pl.String(), "value": pl.Binary()}))
    return pl.Schema(schema)


def check(node: p.Node, schema: pl.Schema | None) -> pl.Schema | None:
    """Try ``node`` on an empty frame of its input; return its output columns.

    ``None`` (unknown) for sources without a schema and below opaque user code, which
    is not called while declaring.  Raises :class:`PlanError` describing the mistake.
    """
    if isinstance(node, p.SourceNode):
        return source_schema(node)
    if schema is None:
        return None
    empty = schema.to_frame()
    try:
        return _output_of(node, empty)
    except pl.exceptions.PolarsError as exc:
        raise PlanError(describe_mistake(node, schema, exc)) from exc


def _output_of(node: p.Node, empty: pl.DataFrame) -> pl.Schema | None:
    if isinstance(node, p.FilterNode):
        return empty.filter(node.predicate).schema
    if isinstance(node, p.SelectNode):
        if not node.replace:
            return empty.with_columns(node.exprs).schema
        out = empty.select(node.exprs)
        kept = [c for c in METADATA if c in empty.columns and c not in out.columns]
        return out.with_columns(empty.select(kept)).schema if kept else out.schema
    if isinstance(node, p.ExplodeNode):
        return empty.explode(list(node.columns)).schema
    if isinstance(node, p.KeyByNode):
        empty.select(list(node.columns))
        return empty.schema
    if isinstance(node, p.WindowNode | p.TopicSinkNode | p.RouteNode | p.TableJoinNode):
        empty.select([pl.col(c) for c in columns_read(node) if c in empty.columns])
        missing = [c for c in columns_read(node) if c not in empty.columns]
        if missing:
            raise pl.exceptions.ColumnNotFoundError(f'unable to find column "{missing[0]}"')
        if isinstance(node, p.TopicSinkNode | p.RouteNode) and node.key is not None:
            empty.select(node.key)
        return None
    return None  # opaque user code, state, late output: not evaluated while declaring
