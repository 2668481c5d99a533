"""InfluxDB sink: line protocol over HTTP ``/write`` (the v1 API), gzip, batches.

The v1 write API is accepted by InfluxDB 1.x, by 2.x in compatibility mode and by 3.x.
Points are idempotent: a point with the same measurement, tag set and timestamp
overwrites the earlier one, so a replay after a crash writes the same points again
and changes nothing.  Every row becomes one point with a nanosecond timestamp.

While the server is unreachable or answers 5xx, :meth:`InfluxSink.flush` raises
:class:`~haeryu.stream.sinks.Backpressure` and the checkpoint waits; once the buffer
is full :meth:`InfluxSink.write` does too.  Nothing is dropped.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import httpx
import polars as pl

from haeryu.stream.sinks import Backpressure, PlanError, Sink, SinkContext, SinkError

log = logging.getLogger(__name__)

_NUMERIC_INT = (
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
)


def escape_key(expr: pl.Expr) -> pl.Expr:
    """Escape a tag key, tag value or field key: backslash, comma, equals sign, space."""
    # plain literal replacements: no regex engine per value
    for ch in ("\\", ",", "=", " "):
        expr = expr.str.replace_all(ch, "\\" + ch, literal=True)
    return expr


def escape_measurement(name: str) -> str:
    """Escape a measurement name: commas and spaces."""
    return name.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def _escape_key_text(name: str) -> str:
    out = name
    for ch in ("\\", ",", "=", " "):
        out = out.replace(ch, "\\" + ch)
    return out


def field_value(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column rendered as a line-protocol field value (null when it has none)."""
    col = pl.col(name)
    base = dtype.base_type()
    if base == pl.Boolean:
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    if base in _NUMERIC_INT:
        return col.cast(pl.String) + "i"
    if base in (pl.Float32, pl.Float64):
        # InfluxDB stores no NaN or infinity: such a value is left out of its point
        return pl.when(col.is_finite()).then(col.cast(pl.Float64).cast(pl.String))
    if isinstance(dtype, pl.Decimal):
        return col.cast(pl.Float64).cast(pl.String)
    if base in (pl.String, pl.Categorical, pl.Enum):
        text = (
            col.cast(pl.String)
            .str.replace_all("\\", "\\\\", literal=True)
            .str.replace_all('"', '\\"', literal=True)
        )
        return pl.lit('"') + text + pl.lit('"')
    raise PlanError(
        f"InfluxDB sink: field {name!r} has type {dtype}; InfluxDB fields are integers, "
        "floats, booleans or strings: cast it or leave it out of `fields=`"
    )


def tag_value(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column rendered as a tag value; empty values are left out (InfluxDB refuses them)."""
    base = dtype.base_type()
    if base in (pl.List, pl.Array, pl.Struct, pl.Binary, pl.Object):
        raise PlanError(
            f"InfluxDB sink: tag {name!r} has type {dtype}; tags are text: cast it first"
        )
    text = pl.col(name).cast(pl.String)
    return pl.when(text.str.len_bytes() > 0).then(escape_key(text))


def timestamp_ns(name: str, dtype: pl.DataType, unit: str) -> pl.Expr:
    """A column as epoch nanoseconds: a Datetime, or integers in ``unit``."""
    col = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        return col.dt.epoch("ns")
    if dtype.base_type() in _NUMERIC_INT:
        scale = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]
        return col.cast(pl.Int64) * scale
    raise PlanError(f"InfluxDB sink: time column {name!r} has type {dtype}; need Datetime or int")


def to_lines(
    frame: pl.DataFrame,
    *,
    measurement: str,
    tags: Sequence[str],
    fields: Sequence[str],
    time: str,
    time_unit: str = "ms",
) -> pl.Series:
    """Render rows as line-protocol lines; rows with no field value give null."""
    schema = frame.schema
    for c in (*tags, *fields, time):
        if c not in schema:
            raise PlanError(f"InfluxDB sink: column {c!r} is not in the frame")
    # a null value makes its whole "key=value" part null, which concat_str then skips
    tag_parts = [
        pl.lit("," + _escape_key_text(t) + "=") + tag_value(t, schema[t])
        for t in sorted(tags)  # InfluxDB prefers tags in key order
    ]
    field_parts = [pl.lit(_escape_key_text(f) + "=") + field_value(f, schema[f]) for f in fields]
    if not field_parts:
        raise PlanError("InfluxDB sink: no fields to write; name them with `fields=`")
    field_set = pl.concat_str(field_parts, separator=",", ignore_nulls=True)
    tag_set = pl.concat_str(tag_parts, ignore_nulls=True) if tag_parts else pl.lit("")
    ts = timestamp_ns(time, schema[time], time_unit).cast(pl.String)
    line = pl.when(field_set.str.len_bytes() > 0).then(
        pl.concat_str(
            [
                pl.lit(escape_measurement(measurement)),
                tag_set,
                pl.lit(" "),
                field_set,
                pl.lit(" "),
                ts,
            ]
        )
    )
    return frame.select(line.alias("line")).to_series()


@dataclass
class InfluxSink(Sink):
    """Write frames as InfluxDB points through the v1 HTTP API.

    Parameters
    ----------
    url
        Base URL, e.g. ``http://127.0.0.1:8086``.
    database
        Database (1.x) or bucket mapped to it (2.x/3.x).
    measurement
        Measurement name of every point.
    tags
        Columns written as tags (indexed, text).
    fields
        Columns written as fields; by default every column not starting with ``_`` that
        is neither a tag nor the time column.
    time
        Time column: a Datetime, or integers in ``time_unit``.  Default ``_timestamp``
        (the Kafka record's timestamp).
    username, password, token
        Credentials: v1 user and password, or a 2.x/3.x token.
    create_database
        Send ``CREATE DATABASE`` on open (1.x; needs admin rights when auth is on).
    batch_lines
        Lines per HTTP request.
    max_buffer_rows
        Bound of the buffer; beyond it ``write`` raises Backpressure while the server
        cannot take the points.
    """

    url: str
    database: str
    measurement: str
    tags: Sequence[str] = ()
    fields: Sequence[str] | None = None
    time: str = "_timestamp"
    time_unit: str = "ms"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    create_database: bool = True
    batch_lines: int = 5_000
    max_buffer_rows: int = 200_000
    timeout: float = 10.0
    name: str = "influx"
    points_written: int = 0
    rows_without_fields: int = 0
    outages: int = 0
    _client: httpx.Client | None = field(default=None, repr=False)
    _buffer: list[pl.Series] = field(default_factory=list, repr=False)
    _rows: int = 0
    _backoff: float = 0.0

    def open(self, context: SinkContext) -> None:
        """Check the server answers and the credentials work; create the database."""
        self.close()  # opened again after a worker's rewind: one client at a time
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        auth = (self.username, self.password or "") if self.username else None
        self._client = httpx.Client(
            base_url=self.url, timeout=self.timeout, headers=headers, auth=auth
        )
        try:
            if self.create_database:
                answer = self._client.post(
                    "/query", data={"q": f'CREATE DATABASE "{self.database}"'}
                )
            else:
                answer = self._client.get("/query", params={"q": "SHOW DATABASES"})
        except httpx.TransportError as exc:
            raise SinkError(
                f"cannot reach InfluxDB at {self.url}: {exc}; start it or fix `url`"
            ) from exc
        if answer.status_code in (401, 403):
            raise SinkError(
                f"InfluxDB at {self.url} refused the credentials ({answer.status_code}: "
                f"{answer.text.strip()}); fix username/password or token"
            )
        if answer.status_code >= 400:
            raise SinkError(f"InfluxDB at {self.url} answered {answer.status_code}: {answer.text}")

    def _fields(self, frame: pl.DataFrame) -> list[str]:
        if self.fields is not None:
            return list(self.fields)
        skip = {*self.tags, self.time}
        return [c for c in frame.columns if not c.startswith("_") and c not in skip]

    def write(self, batch: pl.DataFrame) -> None:
        """Render the rows as lines and buffer them; send when ``batch_lines`` are held."""
        if self._rows >= self.max_buffer_rows:
            self._drain()  # raises Backpressure while the server is down
        if batch.height == 0:
            return
        lines = to_lines(
            batch,
            measurement=self.measurement,
            tags=self.tags,
            fields=self._fields(batch),
            time=self.time,
            time_unit=self.time_unit,
        )
        empty = lines.null_count()
        if empty:
            # a point needs a field: these rows have none (every field null or NaN)
            self.rows_without_fields += empty
            log.warning("InfluxDB sink: %d rows have no field value and make no point", empty)
            lines = lines.drop_nulls()
        self._buffer.append(lines)
        self._rows += lines.len()
        if self._rows >= self.batch_lines:
            try:
                self._drain()
            except Backpressure as exc:  # kept; the checkpoint's flush retries
                log.warning("InfluxDB sink: %s", exc)

    def flush(self) -> None:
        """Send every buffered line; Backpressure while the server is unreachable."""
        self._drain()

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _drain(self) -> None:
        if not self._buffer:
            return
        lines = pl.concat(self._buffer)
        sent = 0
        try:
            while sent < lines.len():
                chunk = lines.slice(sent, self.batch_lines)
                self._post(chunk)
                sent += chunk.len()
        finally:
            # what went through stays sent; the rest waits for the next try
            rest = lines.slice(sent)
            self._buffer = [rest] if rest.len() else []
            self._rows = rest.len()
            self.points_written += sent

    def _post(self, chunk: pl.Series) -> None:
        assert self._client is not None, "open() first"
        text = str(chunk.str.join("\n").item()) + "\n"
        body = gzip.compress(text.encode(), compresslevel=1)
        try:
            answer = self._client.post(
                "/write",
                params={"db": self.database, "precision": "ns"},
                content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
            )
        except httpx.TransportError as exc:
            self._lost(str(exc) or type(exc).__name__)
        if answer.status_code >= 500:
            self._lost(f"{answer.status_code}: {answer.text.strip()}")
        if answer.status_code >= 400:
            raise SinkError(
                f"InfluxDB refused points ({answer.status_code}: {answer.text.strip()}); "
                "they stay unwritten and the checkpoint fails"
            )
        self._backoff = 0.0

    def _lost(self, why: str) -> NoReturn:
        self.outages += 1
        self._backoff = min(2.0, max(0.05, self._backoff * 2))
        raise Backpressure(
            f"InfluxDB unreachable ({why}); holding {self._rows} points",
            retry_after=self._backoff,
        )
