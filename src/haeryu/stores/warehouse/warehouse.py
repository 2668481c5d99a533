"""The warehouse: DuckDB over every Delta table of the lake, read at its latest version."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from haeryu.stores.warehouse.errors import QueryError, TableError
from haeryu.stores.warehouse.native_scan import scan_sql
from haeryu.stores.warehouse.sql_errors import explain
from haeryu.stores.warehouse.tables import LakeTable, find_tables

log = logging.getLogger(__name__)

ConnectionHook = Callable[[duckdb.DuckDBPyConnection], None]


# time_bucket() on a TIMESTAMPTZ goes through ICU's calendar for every row (about 8x
# slower on 10M rows); lake timestamps are UTC, so fixed-width buckets are arithmetic
# on epoch microseconds.  Months and years have no fixed width: refused, use time_bucket.
UTC_BUCKET_MACRO = """
CREATE MACRO utc_bucket(width, ts) AS (
    CASE WHEN date_part('year', width) * 12 + date_part('month', width) <> 0
         THEN error('utc_bucket takes a fixed width (days or less); use time_bucket for months')
    END,
    make_timestamptz(
        epoch_us(ts) - (epoch_us(ts) % epoch_us(TIMESTAMP '1970-01-01' + width)
                        + epoch_us(TIMESTAMP '1970-01-01' + width))
                       % epoch_us(TIMESTAMP '1970-01-01' + width)
    )
)[2]
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """SQL over the lake: each Delta table under ``lake_root`` is a DuckDB view.

    Before every query the warehouse looks for new tables and new Delta versions, so a
    query always reads the latest committed version.  ``deltalake`` resolves a version to
    its files and partition values; DuckDB's own Parquet reader scans them, with the
    partition values from the log as constant columns.  A table that plain Parquet reads
    cannot give exactly (deletion vectors, column mapping, a column no file of a partition
    has yet, object storage), or any table with ``parquet_reader=False``, is scanned as a
    pyarrow dataset instead.  Either way projections and filters reach the scan, and nothing is
    downloaded at query time.

    ``hooks`` are called with the DuckDB connection once it is open (for example to
    register the model registry's ``predict()`` function).

    >>> wh = Warehouse("lake")                      # doctest: +SKIP
    >>> wh.sql("SELECT count(*) AS n FROM readings")  # doctest: +SKIP
    """

    def __init__(
        self,
        lake_root: str | Path,
        *,
        hooks: tuple[ConnectionHook, ...] = (),
        parquet_reader: bool = True,
    ) -> None:
        self.lake_root = Path(lake_root)
        self.parquet_reader = parquet_reader
        # No extension may be fetched at query time: users' machines can be offline.
        self.connection = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        # Time buckets and day boundaries in UTC, whatever the machine's zone.
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute(UTC_BUCKET_MACRO)
        self._tables: dict[str, LakeTable] = {}
        self._broken: dict[str, TableError] = {}
        self._warned: set[str] = set()
        self._native: set[str] = set()
        for hook in hooks:
            hook(self.connection)

    # -- tables -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Register new tables and new versions; unregister tables that are gone."""
        found = find_tables(self.lake_root)
        for name in list(self._tables):
            if name not in found:
                self._detach(name)
                del self._tables[name]
        self._broken = {}
        for name, path in found.items():
            table = self._tables.setdefault(name, LakeTable(name, path))
            try:
                if table.refresh():
                    self._attach(table)
            except TableError as error:
                # One damaged table must not stop queries on the others.
                if name not in self._warned:
                    log.info("%s", error)
                    self._warned.add(name)
                self._broken[name] = error
                if name in self._tables:
                    self._detach(name)
                    del self._tables[name]

    def _attach(self, table: LakeTable) -> None:
        """Make ``table``'s current version the view of its name."""
        self._detach(table.name)
        native = scan_sql(table.delta, self.connection) if self.parquet_reader else None
        if native is not None:
            try:
                self.connection.execute(f"CREATE VIEW {_quote(table.name)} AS {native}")
                self._native.add(table.name)
                return
            except duckdb.Error as error:
                log.debug("table %s: DuckDB's Parquet reader refused it: %s", table.name, error)
        self.connection.register(table.name, table.dataset)

    def _detach(self, name: str) -> None:
        if name in self._native:
            self.connection.execute(f"DROP VIEW IF EXISTS {_quote(name)}")
            self._native.discard(name)
        else:
            self.connection.unregister(name)

    def scans(self) -> dict[str, str]:
        """How each table is read: ``"parquet"`` (DuckDB's reader) or ``"dataset"`` (pyarrow)."""
        self.refresh()
        return {n: "parquet" if n in self._native else "dataset" for n in self._tables}

    def tables(self) -> dict[str, list[str]]:
        """Every readable table and its columns, at the latest version."""
        self.refresh()
        return {name: t.columns for name, t in self._tables.items()}

    @property
    def broken_tables(self) -> dict[str, TableError]:
        """Tables found at the last refresh whose log could not be read."""
        return dict(self._broken)

    # -- queries ------------------------------------------------------------------------

    def arrow(self, query: str) -> pa.Table:
        """Run ``query`` and return the result as an Arrow table.

        Raises :class:`QueryError` pointing at the wrong part of the SQL, or
        :class:`TableError` when the query reads a table whose log is damaged.
        """
        self.refresh()
        try:
            result = self.connection.sql(query)
            if result is None:  # a statement without a result (SET, CREATE ...)
                return pa.table({})
            return result.to_arrow_table()
        except duckdb.Error as error:
            raise self._explain(error, query) from None

    def sql(self, query: str) -> pl.DataFrame:
        """Run ``query`` and return the result as a Polars frame."""
        frame = pl.from_arrow(self.arrow(query))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _explain(self, error: duckdb.Error, query: str) -> QueryError | TableError:
        if isinstance(error, duckdb.CatalogException):
            for name, broken in self._broken.items():
                if name.lower() in str(error).lower():
                    return broken
        columns = {name: t.columns for name, t in self._tables.items()}
        return explain(error, query, tables=columns, lake=str(self.lake_root))

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.connection.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
