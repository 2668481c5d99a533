"""PostgreSQL sink: batched ``COPY`` with psycopg 3, optional upsert, exactly-once.

Each flush is one transaction: the buffered rows go in with ``COPY`` (through a temporary
table and ``INSERT ... ON CONFLICT`` when ``key`` is set), and the same transaction
raises the stored input positions (``haeryu_positions``: pipeline, table, topic,
partition -> next offset) to just past the rows it wrote.  On restart the sink reads
them back and skips rows whose source offset is below, so a replay writes nothing twice.
Positions only grow.

While PostgreSQL is unreachable, :meth:`PostgresSink.flush` raises
:class:`~haeryu.stream.sinks.Backpressure` (the checkpoint waits and retries with
back-off) and :meth:`PostgresSink.write` does too once the buffer is full; nothing is
dropped, and the pipeline goes on by itself once the server answers again.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import polars as pl
import psycopg
from psycopg import sql

from haeryu.stream.sinks import (
    Backpressure,
    PlanError,
    Sink,
    SinkContext,
    SinkError,
    SourcePositions,
)

log = logging.getLogger(__name__)

# Columns the engine adds to every row; the sink takes a row's origin from them.
TOPIC, PARTITION, OFFSET = "_topic", "_partition", "_offset"

POSITIONS_TABLE = "haeryu_positions"

_INTEGERS: dict[type[pl.DataType], str] = {
    pl.Int8: "smallint",
    pl.Int16: "smallint",
    pl.Int32: "integer",
    pl.Int64: "bigint",
    pl.UInt8: "smallint",
    pl.UInt16: "integer",
    pl.UInt32: "bigint",
    pl.UInt64: "numeric(20,0)",
}


def postgres_type(name: str, dtype: pl.DataType) -> str:
    """The PostgreSQL column type for a Polars dtype; :class:`PlanError` if none fits."""
    base = dtype.base_type()
    if base in _INTEGERS:
        return _INTEGERS[base]
    if base == pl.Float32:
        return "real"
    if base == pl.Float64:
        return "double precision"
    if base == pl.Boolean:
        return "boolean"
    if base in (pl.String, pl.Categorical, pl.Enum):
        return "text"
    if base == pl.Binary:
        return "bytea"
    if base == pl.Date:
        return "date"
    if base == pl.Time:
        return "time"
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if base == pl.Duration:
        return "interval"
    if isinstance(dtype, pl.Decimal):
        return f"numeric({dtype.precision},{dtype.scale})"
    if base in (pl.List, pl.Array, pl.Struct):
        return "jsonb"
    raise PlanError(
        f"PostgreSQL sink: column {name!r} has type {dtype}, which has no PostgreSQL "
        f"type; cast it (.with_columns(pl.col({name!r}).cast(pl.String))) or leave it "
        "out with `columns=`"
    )


def _as_copy_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Turn columns the CSV writer cannot render as PostgreSQL reads them into text."""
    exprs: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        base = dtype.base_type()
        col = pl.col(name)
        if base == pl.Binary:
            exprs.append(pl.lit("\\x") + col.bin.encode("hex"))
        elif base in (pl.List, pl.Array, pl.Struct):
            exprs.append(col.struct.json_encode() if base == pl.Struct else _json_list(col))
        elif base == pl.Duration:
            exprs.append(col.dt.total_microseconds().cast(pl.String) + " microseconds")
        elif base == pl.Datetime:
            # ISO 8601 with an explicit offset (or none for naive timestamps)
            fmt = "%Y-%m-%d %H:%M:%S%.f%:z" if getattr(dtype, "time_zone", None) else None
            exprs.append(col.dt.to_string(fmt or "%Y-%m-%d %H:%M:%S%.f"))
        else:
            continue
        exprs[-1] = exprs[-1].alias(name)
    return frame.with_columns(exprs) if exprs else frame


def _json_list(col: pl.Expr) -> pl.Expr:
    """A list column as JSON text (wrapped in a struct so Polars can encode it)."""
    return pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)


@dataclass
class PostgresSink(Sink):
    """Write frames into a PostgreSQL table, exactly once when rows carry their origin.

    Parameters
    ----------
    dsn
        libpq connection string or URI (``host=127.0.0.1 port=5432 user=... dbname=...``).
    table
        Target table; created from the first frame's schema when it does not exist.
    key
        Columns of the primary key: rows are upserted by it (last row wins).  Without
        it rows are appended.
    columns
        Columns to write; by default every column not starting with ``_`` (the engine's
        metadata columns ``_key``, ``_offset``, ... are left out).
    batch_rows
        Rows buffered before the sink writes them without waiting for a checkpoint.
    max_buffer_rows
        Bound of the buffer: beyond it ``write`` raises Backpressure while PostgreSQL
        cannot take the rows.
    connect_timeout
        Seconds to wait for a connection.
    """

    dsn: str
    table: str
    key: Sequence[str] = ()
    columns: Sequence[str] | None = None
    batch_rows: int = 50_000
    max_buffer_rows: int = 200_000
    connect_timeout: float = 5.0
    name: str = "postgres"
    pipeline: str = ""
    rows_written: int = 0
    rows_skipped: int = 0
    outages: int = 0
    _conn: psycopg.Connection[tuple[object, ...]] | None = field(default=None, repr=False)
    _buffer: list[pl.DataFrame] = field(default_factory=list, repr=False)
    _rows: int = 0
    # (topic, partition) -> next offset not yet taken: stored ones plus the buffer
    _taken: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)
    _schema: dict[str, str] | None = field(default=None, repr=False)
    _backoff: float = 0.0
    _table_ready: bool = False

    # ------------------------------------------------------------------ contract

    def open(self, context: SinkContext) -> None:
        """Connect, create the positions table and read back what is already stored.

        Raises SinkError with what to do when the server cannot be reached or refuses
        the credentials.
        """
        self.pipeline = self.pipeline or context.pipeline
        try:
            self._connect()
        except psycopg.OperationalError as exc:
            raise SinkError(_explain(exc, self.dsn)) from exc
        except psycopg.Error as exc:  # e.g. no right to create the positions table
            raise SinkError(
                f"PostgreSQL refused to set up {POSITIONS_TABLE!r}: {exc}; grant the user "
                "CREATE on the schema, or create the table as an administrator"
            ) from exc

    def write(self, batch: pl.DataFrame) -> None:
        """Buffer the rows not yet stored; write the buffer when it holds ``batch_rows``."""
        if self._rows >= self.max_buffer_rows:
            self._drain()  # raises Backpressure while the target is down
        if batch.height == 0:
            return
        self._check_schema(batch)  # before the rows count as taken
        frame = self._fresh(batch)
        if frame.height == 0:
            return
        self._buffer.append(frame)
        self._rows += frame.height
        if self._rows >= self.batch_rows:
            try:
                self._drain()
            except Backpressure as exc:  # the rows are taken; the next flush retries
                log.warning("PostgreSQL sink %s: %s", self.table, exc)

    def flush(self) -> None:
        """Write everything buffered in one transaction with its positions."""
        self._drain()

    def commit(self, positions: SourcePositions) -> None:
        """Nothing to do: positions were stored with the rows in :meth:`flush`."""

    def close(self) -> None:
        """Close the connection (buffered rows are the checkpoint's to flush)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ internals

    def _payload_columns(self, frame: pl.DataFrame) -> list[str]:
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise PlanError(f"PostgreSQL sink: columns {missing} are not in the frame")
            return list(self.columns)
        return [c for c in frame.columns if not c.startswith("_")]

    def _has_origin(self, frame: pl.DataFrame) -> bool:
        return all(c in frame.columns for c in (TOPIC, PARTITION, OFFSET))

    def _fresh(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The rows of ``batch`` past the positions already taken (stored or buffered)."""
        if batch.height == 0 or not self._has_origin(batch):
            return batch
        parts = []
        for (topic, partition), part in batch.partition_by(
            [TOPIC, PARTITION], as_dict=True, maintain_order=True
        ).items():
            tp = (str(topic), int(partition))
            start = self._taken.get(tp, 0)
            keep = part.filter(pl.col(OFFSET) >= start)
            self.rows_skipped += part.height - keep.height
            if keep.height:
                self._taken[tp] = max(start, int(keep[OFFSET].max()) + 1)  # type: ignore[arg-type]
                parts.append(keep)
        return pl.concat(parts) if parts else batch.clear()

    def _check_schema(self, frame: pl.DataFrame) -> None:
        cols = self._payload_columns(frame)
        if self._schema is None:
            if not cols:
                raise PlanError(
                    f"PostgreSQL sink: no columns to write into {self.table!r} (those starting "
                    "with '_' are left out); name them with `columns=`"
                )
            schema = {c: postgres_type(c, frame.schema[c]) for c in cols}
            missing = [k for k in self.key if k not in schema]
            if missing:
                raise PlanError(f"PostgreSQL sink: key columns {missing} are not written")
            self._schema = schema
            return
        # a column that appears later has no place in the table: stop rather than drop it
        new = [c for c in cols if c not in self._schema]
        if new:
            raise PlanError(
                f"PostgreSQL sink: columns {new} appeared after table {self.table!r} was "
                "laid out; declare the source's schema or choose the columns with `columns=`"
            )

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self.dsn, connect_timeout=max(1, int(self.connect_timeout)))
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (pipeline text, sink_table text, topic text,"
                    " partition integer, next_offset bigint NOT NULL,"
                    " PRIMARY KEY (pipeline, sink_table, topic, partition))"
                ).format(sql.Identifier(POSITIONS_TABLE))
            )
            rows = conn.execute(
                sql.SQL(
                    "SELECT topic, partition, next_offset FROM {} "
                    "WHERE pipeline = %s AND sink_table = %s"
                ).format(sql.Identifier(POSITIONS_TABLE)),
                (self.pipeline, self.table),
            ).fetchall()
        stored = {(str(t), int(p)): int(o) for t, p, o in rows}
        # A commit whose answer was lost may have gone through: drop what it stored.
        self._buffer = [self._below(f, stored) for f in self._buffer]
        self._buffer = [f for f in self._buffer if f.height]
        self._rows = sum(f.height for f in self._buffer)
        for tp, offset in stored.items():
            self._taken[tp] = max(self._taken.get(tp, 0), offset)
        self._conn = conn
        return conn

    def _below(self, frame: pl.DataFrame, stored: dict[tuple[str, int], int]) -> pl.DataFrame:
        if not stored or not self._has_origin(frame):
            return frame
        starts = pl.DataFrame(
            {
                TOPIC: [t for t, _ in stored],
                PARTITION: [p for _, p in stored],
                "__stored": list(stored.values()),
            },
            schema_overrides={PARTITION: frame.schema[PARTITION], TOPIC: frame.schema[TOPIC]},
        )
        joined = frame.join(starts, on=[TOPIC, PARTITION], how="left")
        kept = joined.filter(pl.col("__stored").is_null() | (pl.col(OFFSET) >= pl.col("__stored")))
        self.rows_skipped += frame.height - kept.height
        return kept.drop("__stored")

    def _drain(self) -> None:
        if not self._buffer:
            return
        frame = pl.concat(self._buffer, how="diagonal_relaxed")
        try:
            conn = self._connect()
            with conn.transaction():
                self._ensure_table(conn)
                frame = self._unstored(conn, frame)
                if frame.height:
                    self._copy(conn, frame)
                    self._store_positions(conn, frame)
        except psycopg.OperationalError as exc:
            self._lost(exc)
        except psycopg.Error as exc:
            raise SinkError(
                f"PostgreSQL refused rows for table {self.table!r}: {exc}; the rows stay "
                "unwritten and the checkpoint fails (fix the table or the data)"
            ) from exc
        self._table_ready = True
        self._buffer.clear()
        self._rows = 0
        self._backoff = 0.0
        self.rows_written += frame.height

    def _lost(self, exc: psycopg.OperationalError) -> NoReturn:
        """The server went away: drop the connection and ask the engine to retry later."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.outages += 1
        self._backoff = min(2.0, max(0.05, self._backoff * 2))
        raise Backpressure(
            f"PostgreSQL unreachable ({' '.join(str(exc).split())}); holding {self._rows} rows",
            retry_after=self._backoff,
        ) from exc

    def _ensure_table(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        assert self._schema is not None
        if self._table_ready:
            return
        found = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (self.table,),
        ).fetchall()
        if found:
            have = {str(r[0]) for r in found}
            missing = [c for c in self._schema if c not in have]
            if missing:
                raise SinkError(
                    f"table {self.table!r} exists without columns {missing}; add them "
                    "(ALTER TABLE ... ADD COLUMN) or write to another table"
                )
            return
        cols = [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in self._schema.items()
        ]
        if self.key:
            cols.append(
                sql.SQL("PRIMARY KEY ({})").format(
                    sql.SQL(", ").join(sql.Identifier(k) for k in self.key)
                )
            )
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                sql.Identifier(self.table), sql.SQL(", ").join(cols)
            )
        )

    def _copy(self, conn: psycopg.Connection[tuple[object, ...]], frame: pl.DataFrame) -> None:
        assert self._schema is not None
        names = list(self._schema)
        rows = frame.select(names)
        if self.key:
            rows = rows.unique(subset=list(self.key), keep="last", maintain_order=True)
        data = io.BytesIO()
        _as_copy_text(rows).write_csv(data, include_header=False, null_value="")
        target = sql.Identifier(self.table)
        column_list = sql.SQL(", ").join(sql.Identifier(c) for c in names)
        if self.key:
            staging = sql.Identifier(f"haeryu_stage_{self.table}")
            conn.execute(
                sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(staging, target)
            )
            into = staging
        else:
            into = target
        with conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(into, column_list)
        ) as copy:
            copy.write(data.getvalue())
        if self.key:
            updates = [c for c in names if c not in self.key]
            action = (
                sql.SQL("DO UPDATE SET {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                        for c in updates
                    )
                )
                if updates
                else sql.SQL("DO NOTHING")
            )
            conn.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
                    target,
                    column_list,
                    column_list,
                    staging,
                    sql.SQL(", ").join(sql.Identifier(k) for k in self.key),
                    action,
                )
            )

    def _unstored(
        self, conn: psycopg.Connection[tuple[object, ...]], frame: pl.DataFrame
    ) -> pl.DataFrame:
        """The rows of ``frame`` not stored yet, with this sink's positions locked.

        Another worker may have taken the partitions over and stored the same rows
        (after a rebalance both can hold them); the row lock makes check-and-write
        atomic across sinks, so each row goes in once.
        """
        if not self._has_origin(frame):
            return frame
        # a partition seen for the first time gets its row now, so there is one to lock
        fresh = frame.select(TOPIC, PARTITION).unique().sort(TOPIC, PARTITION)
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {} (pipeline, sink_table, topic, partition, next_offset) "
                    "VALUES (%s, %s, %s, %s, 0) ON CONFLICT DO NOTHING"
                ).format(sql.Identifier(POSITIONS_TABLE)),
                [(self.pipeline, self.table, t, p) for t, p in fresh.iter_rows()],
            )
        found = conn.execute(
            sql.SQL(
                "SELECT topic, partition, next_offset FROM {} WHERE pipeline = %s "
                "AND sink_table = %s ORDER BY topic, partition FOR UPDATE"
            ).format(sql.Identifier(POSITIONS_TABLE)),
            (self.pipeline, self.table),
        ).fetchall()
        return self._below(frame, {(str(t), int(p)): int(o) for t, p, o in found})  # type: ignore[call-overload]

    def _store_positions(
        self, conn: psycopg.Connection[tuple[object, ...]], frame: pl.DataFrame
    ) -> None:
        if not self._has_origin(frame):
            return
        ends = frame.group_by(TOPIC, PARTITION).agg(pl.col(OFFSET).max() + 1)
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {t} (pipeline, sink_table, topic, partition, next_offset) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (pipeline, sink_table, topic, "
                    "partition) DO UPDATE SET next_offset = GREATEST({t}.next_offset, "
                    "EXCLUDED.next_offset)"
                ).format(t=sql.Identifier(POSITIONS_TABLE)),
                [(self.pipeline, self.table, t, p, o) for t, p, o in ends.iter_rows()],
            )


def _explain(exc: psycopg.OperationalError, dsn: str) -> str:
    text = str(exc).strip()
    where = psycopg.conninfo.conninfo_to_dict(dsn)
    target = f"{where.get('host', 'localhost')}:{where.get('port', 5432)}"
    if "password" in text or "authentication" in text:
        hint = "check user and password in the dsn (and pg_hba.conf on the server)"
    elif "does not exist" in text:
        hint = "create the database or fix dbname in the dsn"
    else:
        hint = "start PostgreSQL or fix host/port in the dsn"
    return f"cannot connect to PostgreSQL at {target}: {text}; {hint}"


def wait_for_server(dsn: str, timeout: float = 30.0) -> None:
    """Block until PostgreSQL accepts connections at ``dsn`` (for tools and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
