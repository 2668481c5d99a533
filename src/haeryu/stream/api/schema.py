"""Turn the schemas users write (dataclass, TypedDict, pydantic model, dict) into column types.

A source declares ``schema=Reading``; the engine needs a Polars schema and the set of
fields that must be present.  One rule holds for every kind of schema: a field typed
``X | None`` (``Optional[X]``) may be absent or null, every other field is required, and
a record missing one goes to the dead-letter topic instead of flowing on with a null.
A :class:`polars.Schema` cannot say ``| None``, so all its fields are required; write a
mapping (``{"note": pl.String | None}``) for optional ones.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

import polars as pl
from polars.datatypes import DataTypeClass

from haeryu.stream.errors import SchemaError

_SCALARS: dict[Any, pl.DataType] = {
    int: pl.Int64(),
    float: pl.Float64(),
    str: pl.String(),
    bool: pl.Boolean(),
    bytes: pl.Binary(),
    dt.datetime: pl.Datetime("ms", "UTC"),
    dt.date: pl.Date(),
    decimal.Decimal: pl.Float64(),
}


@dataclass(frozen=True, slots=True)
class Columns:
    """Column types of a record plus which fields must be non-null.

    Attributes
    ----------
    dtypes
        Field name to Polars type, in declaration order.
    required
        Fields that must be present and non-null.
    """

    dtypes: dict[str, pl.DataType]
    required: frozenset[str]

    @property
    def schema(self) -> pl.Schema:
        """The Polars schema of the decoded fields."""
        return pl.Schema(self.dtypes)


SchemaLike = type | Mapping[str, Any] | pl.Schema | Columns
"""What ``schema=`` accepts: a dataclass, TypedDict, pydantic model, mapping or Polars schema."""


def columns_of(schema: SchemaLike) -> Columns:
    """Return the :class:`Columns` of a user schema.

    Parameters
    ----------
    schema
        A dataclass, ``TypedDict`` or pydantic model class; a mapping of field name to
        Polars type or Python type; or a :class:`polars.Schema`.  Fields typed
        ``X | None`` are optional, every other field is required (all fields of a
        :class:`polars.Schema`, which has no way to say ``| None``).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Reading:
    ...     machine_id: str
    ...     temperature: float
    ...     note: str | None = None
    >>> cols = columns_of(Reading)
    >>> cols.dtypes
    {'machine_id': String, 'temperature': Float64, 'note': String}
    >>> sorted(cols.required)
    ['machine_id', 'temperature']
    >>> sorted(columns_of({"device": str, "level": pl.Int16 | None}).required)
    ['device']
    """
    if isinstance(schema, Columns):
        return schema
    if isinstance(schema, pl.Schema):
        return Columns({n: _dtype(tp, n) for n, tp in schema.items()}, frozenset(schema))
    if isinstance(schema, Mapping):
        hints = {name: _unwrap_optional(hint) for name, hint in schema.items()}
        return Columns(
            {name: _dtype(inner, name) for name, (inner, _) in hints.items()},
            frozenset(name for name, (_, optional) in hints.items() if not optional),
        )
    if not isinstance(schema, type):
        raise SchemaError(f"schema must be a class or a mapping of field types, got {schema!r}")
    fields = _fields_of_class(schema)
    dtypes: dict[str, pl.DataType] = {}
    required: set[str] = set()
    for name, (hint, must) in fields.items():
        inner, optional = _unwrap_optional(hint)
        dtypes[name] = _dtype(inner, name)
        if must and not optional:
            required.add(name)
    return Columns(dtypes, frozenset(required))


def _fields_of_class(cls: type) -> dict[str, tuple[Any, bool]]:
    """Field name to (type hint, declared required) for dataclasses, TypedDicts, pydantic."""
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict):  # pydantic v2
        return {
            name: (info.annotation, bool(info.is_required())) for name, info in model_fields.items()
        }
    try:
        hints = get_type_hints(cls, include_extras=True)
    except Exception as exc:  # unresolved forward references and the like
        raise SchemaError(f"cannot read the type hints of {cls.__name__}: {exc}") from exc
    if dataclasses.is_dataclass(cls):
        return {f.name: (hints[f.name], True) for f in dataclasses.fields(cls)}
    if typing.is_typeddict(cls):
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset(hints))
        # Python 3.11 misses NotRequired[...] in string annotations; look at the hint too.
        return {
            name: (
                _strip_required(hint),
                name in required_keys and get_origin(hint) is not typing.NotRequired,
            )
            for name, hint in hints.items()
        }
    if hints:
        return {name: (hint, True) for name, hint in hints.items()}
    raise SchemaError(
        f"{cls.__name__} has no typed fields; use a dataclass, TypedDict, pydantic model "
        "or a mapping of field name to type"
    )


def _strip_required(hint: Any) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Required, typing.NotRequired):
        return get_args(hint)[0]
    if origin is typing.Annotated:
        return get_args(hint)[0]
    return hint


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    hint = _strip_required(hint)
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        optional = len(args) != len(get_args(hint))
        if len(args) == 1:
            return args[0], optional
        raise SchemaError(f"union types other than X | None are not supported: {hint!r}")
    return hint, False


def _dtype(hint: Any, name: str) -> pl.DataType:
    """Map a Python or Polars type to a Polars data type instance."""
    if isinstance(hint, pl.DataType):
        return hint
    if isinstance(hint, type) and issubclass(hint, pl.DataType):
        return hint()
    hint, _ = _unwrap_optional(hint)
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin = get_origin(hint)
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        args = get_args(hint)
        if not args:
            raise SchemaError(f"field {name!r}: give the element type, e.g. list[float]")
        return pl.List(_dtype(args[0], name))
    if isinstance(hint, type) and (
        dataclasses.is_dataclass(hint) or typing.is_typeddict(hint) or hasattr(hint, "model_fields")
    ):
        return pl.Struct(columns_of(hint).dtypes)
    raise SchemaError(
        f"field {name!r}: no column type for {hint!r}; use int, float, str, bool, bytes, "
        "datetime, date, list[...], a nested dataclass, or a Polars type"
    )


# JSON readers understand only a few wide types natively; everything else is read in a
# wide type first and narrowed afterwards, so a bad value becomes a per-record error
# instead of failing (or, for small ints, crashing) the whole batch.
def json_read_dtype(dtype: pl.DataType | DataTypeClass) -> pl.DataType:
    """The type to read a field as from JSON before narrowing it to ``dtype``."""
    if not isinstance(dtype, pl.DataType):
        return json_read_dtype(dtype())
    if dtype.is_integer():
        return pl.Int64()
    if dtype.is_float() or isinstance(dtype, pl.Decimal):
        return pl.Float64()
    if isinstance(dtype, pl.Datetime | pl.Date | pl.Time | pl.Duration | pl.Categorical | pl.Enum):
        return pl.String()
    if isinstance(dtype, pl.List | pl.Array):
        return pl.List(json_read_dtype(dtype.inner))
    if isinstance(dtype, pl.Struct):
        return pl.Struct({f.name: json_read_dtype(f.dtype) for f in dtype.fields})
    return dtype


def needs_narrowing(dtype: pl.DataType) -> bool:
    """Whether a field read with :func:`json_read_dtype` still has to be cast."""
    return json_read_dtype(dtype) != dtype
