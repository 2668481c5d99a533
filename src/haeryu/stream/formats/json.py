"""JSON records, decoded in bulk by Polars' NDJSON reader.

JSON is parsed by Polars' NDJSON reader over the joined values.  When a batch fails to
parse, the batch is bisected until the failing records are isolated, so a bad record
costs O(log n) extra parses instead of making the whole batch slow.
"""

from __future__ import annotations

import json

import polars as pl

from haeryu.stream.api.schema import Columns, SchemaLike, columns_of, json_read_dtype
from haeryu.stream.formats.base import payload


class JsonFormat:
    """JSON objects, one per record, decoded in bulk by Polars' NDJSON reader.

    Parameters
    ----------
    schema
        Field types; without one, types are inferred from each batch (handy for
        exploring, but a batch that disagrees with the previous one changes the schema).
    """

    name = "json"

    def __init__(self, schema: SchemaLike | None = None) -> None:
        self.columns = columns_of(schema) if schema is not None else None
        self._read_schema: pl.Schema | None = None
        if self.columns is not None:
            self._read_schema = pl.Schema(
                {k: json_read_dtype(v) for k, v in self.columns.dtypes.items()}
            )

    def decode(self, values: list[bytes]) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
        """Decode JSON objects; bad records are isolated by bisection."""
        errors: list[tuple[int, str]] = []
        pieces: list[tuple[pl.DataFrame, list[int]]] = []
        joined = b"\n".join(values)
        if joined.count(b"\n") != len(values) - 1:
            # A value holding a raw newline (pretty-printed JSON) would split into
            # several lines; re-serialise those few values compactly first.
            values = list(values)
            for i, value in enumerate(values):
                if b"\n" in value:
                    values[i] = _compact_json(value)
            joined = b"\n".join(values)
        self._decode_range(values, joined, list(range(len(values))), pieces, errors)
        if len(pieces) == 1:
            frame, good = pieces[0]
        elif pieces:
            frame = pl.concat([p for p, _ in pieces], how="vertical_relaxed")
            good = [i for _, rows in pieces for i in rows]
        else:
            frame, good = self._empty(), []
        if self.columns is not None:
            frame, good, more = _narrow(frame, good, self.columns)
            errors.extend(more)
        errors.sort()
        return frame, good, errors

    def _empty(self) -> pl.DataFrame:
        schema = self.columns.schema if self.columns is not None else pl.Schema()
        return schema.to_frame()

    def _parse(self, data: bytes) -> pl.DataFrame:
        if self._read_schema is not None:
            return pl.read_ndjson(data, schema=self._read_schema)
        return pl.read_ndjson(data, infer_schema_length=None)

    def _decode_range(
        self,
        values: list[bytes],
        joined: bytes | None,
        rows: list[int],
        pieces: list[tuple[pl.DataFrame, list[int]]],
        errors: list[tuple[int, str]],
    ) -> None:
        if joined is None:
            joined = b"\n".join(values[i] for i in rows)
        try:
            frame = self._parse(joined)
            if frame.height == len(rows):
                pieces.append((frame, rows))
                return
            problem = f"decoded {frame.height} rows from {len(rows)} records"
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
            problem = _first_line(exc)
        if len(rows) == 1:
            errors.append((rows[0], _describe_json_error(values[rows[0]], problem)))
            return
        mid = len(rows) // 2
        self._decode_range(values, None, rows[:mid], pieces, errors)
        self._decode_range(values, None, rows[mid:], pieces, errors)

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """Encode each row as a compact JSON object (metadata columns left out)."""
        data = payload(frame)
        if data.height == 0:
            return []
        binary = [name for name, dtype in data.schema.items() if dtype == pl.Binary]
        if binary:  # JSON has no bytes; base64 is what every JSON consumer expects
            data = data.with_columns(pl.col(binary).bin.encode("base64"))
        if data.width == 0:
            return [b"{}"] * data.height
        return data.write_ndjson().encode().split(b"\n")[:-1]


def _compact_json(value: bytes) -> bytes:
    try:
        return json.dumps(json.loads(value), separators=(",", ":")).encode()
    except ValueError:
        # Left as it is: the bisection will isolate it and report the parse error.
        return value.replace(b"\n", b" ")


def _describe_json_error(value: bytes, problem: str) -> str:
    if not value.strip():
        return "empty value"
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(parsed, dict):
        return f"expected a JSON object, got {type(parsed).__name__}"
    return f"does not match the schema: {problem}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _narrow(
    frame: pl.DataFrame, good: list[int], columns: Columns
) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
    """Cast wide JSON types to the declared ones and enforce required fields.

    Vectorised: a value that does not convert becomes null under a non-strict cast,
    and a null where the input had a value marks the record as bad.
    """
    casts: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, str]] = []
    for name, dtype in columns.dtypes.items():
        if frame.schema.get(name) == dtype:
            continue
        casts.append(_convert(name, dtype).alias(name))
    converted = frame.with_columns(casts) if casts else frame
    for name, dtype in columns.dtypes.items():
        if frame.schema.get(name) != dtype:
            checks.append(
                (
                    pl.col(name).is_not_null() & pl.lit(converted[name].is_null()),
                    f"field {name!r}: value does not convert to {dtype}",
                )
            )
    for name in sorted(columns.required):
        checks.append(
            (pl.lit(converted[name].is_null()), f"field {name!r} is required but missing")
        )
    if not checks:
        return converted, good, []
    flags = frame.select([expr.alias(f"c{i}") for i, (expr, _) in enumerate(checks)])
    bad_mask = flags.select(pl.any_horizontal(pl.all())).to_series()
    if not bad_mask.any():
        return converted, good, []
    errors: list[tuple[int, str]] = []
    messages = [m for _, m in checks]
    for row_index, row in zip(
        bad_mask.arg_true().to_list(), flags.filter(bad_mask).iter_rows(), strict=True
    ):
        reason = "; ".join(m for m, hit in zip(messages, row, strict=True) if hit)
        errors.append((good[row_index], reason))
    keep = ~bad_mask
    kept_rows = [g for g, ok in zip(good, keep.to_list(), strict=True) if ok]
    return converted.filter(keep), kept_rows, errors


def _convert(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        text = column.cast(pl.String)
        parsed = text.str.to_datetime(
            strict=False, time_unit=dtype.time_unit or "us", time_zone="UTC"
        )
        if dtype.time_zone is None:
            parsed = parsed.dt.replace_time_zone(None)
        elif dtype.time_zone != "UTC":
            parsed = parsed.dt.convert_time_zone(dtype.time_zone)
        return parsed
    if isinstance(dtype, pl.Date):
        return column.str.to_date(strict=False)
    return column.cast(dtype, strict=False)
