"""JSON records, decoded in bulk by Polars' NDJSON reader.

JSON is parsed by Polars' NDJSON reader over the joined values.  When a batch fails to
parse, the batch is bisected until the failing records are isolated, so a bad record
costs O(log n) extra parses instead of making the whole batch slow.

With a schema, a value of the wrong JSON type is a bad record, never coerced.  The
reader is strict for every type but one: it turns any scalar into text for a string
field (``42`` becomes ``"42"``).  So string fields are read as text and the few values
that look like a coerced number, boolean, object or array are read again, strictly; a
record that fails that is a dead letter.  A dead letter's reason names the field and
the type it expected (:func:`explain`).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

from haeryu.stream.api.schema import Columns, SchemaLike, columns_of, json_read_dtype
from haeryu.stream.formats.base import payload

# What a non-string JSON value looks like once the reader turned it into text.  Real
# strings can look like this too ("42"); those are the ones read again, strictly.
_LOOKS_COERCED = r"^(?:-?[0-9]|true$|false$|\[|\{)"
_STRINGS = (pl.String, pl.Categorical, pl.Enum)
_TEXT = (*_STRINGS, pl.Datetime, pl.Date, pl.Time, pl.Duration)


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
        self._batch_schema: pl.Schema | None = None
        self._text_fields: list[str] = []
        self._nested_text = False
        if self.columns is not None:
            self._read_schema = pl.Schema(
                {k: json_read_dtype(v) for k, v in self.columns.dtypes.items()}
            )
            # Temporal fields are read as text too, but a coerced number does not parse
            # as a date, so narrowing rejects it without this check (ISO dates start
            # with a digit: checking them would re-read every record).
            self._text_fields = [
                k
                for k, v in self._read_schema.items()
                if v == pl.String and isinstance(self.columns.dtypes[k], _STRINGS)
            ]
            self._nested_text = any(
                _strict_text(v) != v for v in self._read_schema.values() if v != pl.String
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
        self._batch_schema = self._read_schema
        if self._read_schema is not None and self._nested_text:
            # Text inside lists and structs has no cheap check after the fact: read it
            # strictly, with fresh categories per batch (freed with the frame).
            self._batch_schema = pl.Schema(
                {k: v if v == pl.String else _strict_text(v) for k, v in self._read_schema.items()}
            )
        self._decode_range(values, joined, list(range(len(values))), pieces, errors)
        if len(pieces) == 1:
            frame, good = pieces[0]
        elif pieces:
            frame = pl.concat([p for p, _ in pieces], how="vertical_relaxed")
            good = [i for _, rows in pieces for i in rows]
        else:
            frame, good = self._empty(), []
        if self.columns is not None:
            frame, good, more = self._reject_coerced_text(values, frame, good)
            errors.extend(more)
            frame, good, more = _narrow(frame, good, self.columns)
            errors.extend(more)
        errors.sort()
        return frame, good, errors

    def _reject_coerced_text(
        self, values: list[bytes], frame: pl.DataFrame, good: list[int]
    ) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
        """Dead-letter records whose text field held a number, boolean, object or array."""
        if not self._text_fields or frame.height == 0:
            return frame, good, []
        suspect = frame.select(
            pl.any_horizontal(
                pl.col(n).str.contains(_LOOKS_COERCED).fill_null(False) for n in self._text_fields
            )
        ).to_series()
        if not suspect.any():
            return frame, good, []
        # Categorical is read strictly: anything but a JSON string fails the parse.  Fresh
        # categories per check, so the interned values are freed with the frame.
        strict = pl.Schema({n: pl.Categorical(pl.Categories.random()) for n in self._text_fields})
        bad: list[int] = []
        _bisect_failures(values, [good[r] for r in suspect.arg_true().to_list()], strict, bad)
        if not bad:
            return frame, good, []
        assert self.columns is not None
        errors = [(i, explain(values[i], self.columns) or "does not match the schema") for i in bad]
        rejected = set(bad)
        keep = pl.Series([g not in rejected for g in good])
        return frame.filter(keep), [g for g in good if g not in rejected], errors

    def _empty(self) -> pl.DataFrame:
        schema = self.columns.schema if self.columns is not None else pl.Schema()
        return schema.to_frame()

    def _parse(self, data: bytes) -> pl.DataFrame:
        if self._batch_schema is not None:
            return pl.read_ndjson(data, schema=self._batch_schema)
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
            errors.append((rows[0], _describe_json_error(values[rows[0]], problem, self.columns)))
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


def _strict_text(given: pl.DataType | DataTypeClass) -> pl.DataType:
    """``dtype`` with its text read as Categorical, which the reader never coerces into."""
    dtype = given if isinstance(given, pl.DataType) else given()
    if dtype == pl.String:
        return pl.Categorical(pl.Categories.random())
    if isinstance(dtype, pl.List):
        return pl.List(_strict_text(dtype.inner))
    if isinstance(dtype, pl.Array):
        return pl.Array(_strict_text(dtype.inner), dtype.shape)
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: _strict_text(f.dtype) for f in dtype.fields})
    return dtype


def _bisect_failures(
    values: list[bytes], rows: list[int], schema: pl.Schema, bad: list[int]
) -> None:
    """Append to ``bad`` the rows whose value does not parse under ``schema``."""
    try:
        pl.read_ndjson(b"\n".join(values[i] for i in rows), schema=schema)
        return
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        pass
    if len(rows) == 1:
        bad.append(rows[0])
        return
    mid = len(rows) // 2
    _bisect_failures(values, rows[:mid], schema, bad)
    _bisect_failures(values, rows[mid:], schema, bad)


def _describe_json_error(value: bytes, problem: str, columns: Columns | None = None) -> str:
    if not value.strip():
        return "empty value"
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        return f"invalid JSON: {exc}"
    if not isinstance(parsed, dict):
        return f"expected a JSON object, got {type(parsed).__name__}"
    reason = explain(value, columns) if columns is not None else None
    return reason or f"does not match the schema: {problem}"


def explain(value: bytes, columns: Columns) -> str | None:
    """Why one JSON record does not match ``columns``: each field with its expected type.

    Runs per record in Python, so only on records already known to be bad.  ``None``
    when no field is at fault (the JSON itself is broken, or a value fits its JSON
    type but not the declared range, which the vectorized narrowing reports).
    """
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return f"expected a JSON object, got {_json_kind(record)}"
    reasons = []
    for name, dtype in columns.dtypes.items():
        item = record.get(name)
        if item is None:
            if name in columns.required:
                reasons.append(f"field {name!r} is required but missing or null")
            continue
        if not _fits(item, dtype):
            reasons.append(
                f"field {name!r}: expected {dtype}, got {_json_kind(item)} {_short(item)}"
            )
    return "; ".join(reasons) or None


def _fits(item: Any, dtype: pl.DataType | DataTypeClass) -> bool:
    """Whether a parsed JSON value has the JSON type ``dtype`` is read from."""
    if item is None:
        return True
    if not isinstance(dtype, pl.DataType):  # nested types may be classes (pl.String)
        dtype = dtype()
    if isinstance(dtype, _TEXT):
        return isinstance(item, str)
    if isinstance(dtype, pl.Boolean):
        return isinstance(item, bool)
    if dtype.is_integer():
        return isinstance(item, int) and not isinstance(item, bool)
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return isinstance(item, int | float) and not isinstance(item, bool)
    if isinstance(dtype, pl.List | pl.Array):
        return isinstance(item, list) and all(_fits(x, dtype.inner) for x in item)
    if isinstance(dtype, pl.Struct):
        return isinstance(item, dict) and all(
            _fits(item.get(f.name), f.dtype) for f in dtype.fields
        )
    return True


def _json_kind(item: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return "object" if isinstance(item, dict) else names.get(type(item), type(item).__name__)


def _short(item: Any) -> str:
    text = json.dumps(item)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _narrow(
    frame: pl.DataFrame, good: list[int], columns: Columns
) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
    """Cast wide JSON types to the declared ones and enforce required fields.

    Vectorised: a value that does not convert becomes null under a non-strict cast,
    and a null where the input had a value marks the record as bad.  Null counts are
    kept by every column, so a clean batch costs no per-row work here.
    """
    casts: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, str]] = []
    for name, dtype in columns.dtypes.items():
        if frame.schema.get(name) == dtype:
            continue
        casts.append(_convert(name, dtype).alias(name))
    converted = frame.with_columns(casts) if casts else frame
    for name, dtype in columns.dtypes.items():
        before = frame[name].null_count()
        if frame.schema.get(name) != dtype and converted[name].null_count() > before:
            checks.append(
                (
                    pl.col(name).is_not_null() & pl.lit(converted[name].is_null()),
                    f"field {name!r}: expected {dtype}, the value does not convert",
                )
            )
    for name in sorted(columns.required):
        if frame[name].null_count():
            checks.append(
                (pl.col(name).is_null(), f"field {name!r} is required but missing or null")
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
