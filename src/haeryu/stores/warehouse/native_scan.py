"""A Delta version as SQL over DuckDB's own Parquet reader, when that reads it exactly.

``deltalake`` resolves the log to the version's files and partition values; DuckDB then
scans the files with its parallel Parquet reader (about ten times faster than scanning
a pyarrow dataset from Python).  Partition values come from the log, never from the
directory names, as constant columns of one ``read_parquet`` per partition.  Tables
this cannot read exactly (deletion vectors, column mapping, too many partitions,
columns the files lack) return ``None``: the caller reads them as a pyarrow dataset.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

MAX_PARTITIONS = 256
_EXACT_READER_FEATURES = {"timestampNtz"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_types(schema: pa.Schema) -> dict[str, str]:
    """The DuckDB type of each column of an Arrow schema."""
    relation = duckdb.from_arrow(schema.empty_table())
    return {name: str(kind) for name, kind in zip(relation.columns, relation.types, strict=True)}


def readable(table: DeltaTable) -> bool:
    """True when plain Parquet reads of the table's files give exactly its rows."""
    protocol = table.protocol()
    if set(protocol.reader_features or ()) - _EXACT_READER_FEATURES:
        return False  # deletion vectors, column mapping, ... change what a file holds
    mode = table.metadata().configuration.get("delta.columnMapping.mode", "none")
    return mode in (None, "none")


def scan_sql(table: DeltaTable, connection: duckdb.DuckDBPyConnection) -> str | None:
    """A SELECT reading ``table``'s current version natively, or None if it cannot."""
    if not readable(table):
        return None
    arrow_schema = pa.schema(table.schema().to_arrow())
    types = duckdb_types(arrow_schema)
    partition_columns = list(table.metadata().partition_columns)
    if any(types[c] == "BLOB" for c in partition_columns):
        return None
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return None
    uri = table.table_uri
    if "://" in uri and not uri.startswith("file://"):
        return None  # object storage: DuckDB would need its httpfs extension
    root = unquote(uri.removeprefix("file://")).rstrip("/")
    groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    paths = actions.column("path").to_pylist()
    values = [actions.column(f"partition.{c}").to_pylist() for c in partition_columns]
    for i, path in enumerate(paths):
        if "://" in path:
            return None  # a file outside the table's directory
        # Paths in the log are URIs: percent-encoded, relative to the table.
        groups[tuple(v[i] for v in values)].append(f"{root}/{unquote(path)}")
    if len(groups) > MAX_PARTITIONS:
        return None
    parts = []
    for key, files in groups.items():
        constants = dict(zip(partition_columns, key, strict=True))
        source = f"read_parquet([{', '.join(_literal(f) for f in files)}], union_by_name = true)"
        try:
            # Reads only the files' footers.
            relation = connection.sql(f"SELECT * FROM {source} LIMIT 0")
        except duckdb.Error:
            return None
        found = {n: str(t) for n, t in zip(relation.columns, relation.types, strict=True)}
        columns = []
        for name, kind in types.items():
            if name in constants:
                value = constants[name]
                text = "NULL" if value is None else _literal(str(value))
                columns.append(f"CAST({text} AS {kind}) AS {_quote(name)}")
            elif name not in found:
                return None  # added by a later schema change; the dataset reader fills nulls
            elif found[name] != kind:
                columns.append(f"CAST({_quote(name)} AS {kind}) AS {_quote(name)}")
            else:
                columns.append(_quote(name))
        parts.append(f"SELECT {', '.join(columns)} FROM {source}")
    return "\nUNION ALL ".join(parts)
