"""``predict('NAME', col1, col2, ...)`` in DuckDB SQL, vectorized over Arrow batches.

DuckDB hands the function a whole chunk (up to 2,048 rows) as Arrow arrays, so the model
runs once per chunk, never once per row. Features are taken by position, in the order the
model stores them (``haeryu model show NAME``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from haeryu.stores.models.errors import FeatureError, ModelError
from haeryu.stores.models.registry import Model, ModelRegistry


def register_sql_functions(con: Any, registry: ModelRegistry | Path | str | None = None) -> None:
    """Make ``predict()`` and ``predict_label()`` callable in SQL on ``con``.

    ``predict('NAME', f1, ..., fn)`` returns a DOUBLE: the positive class's probability
    (binary classifier), the predicted value (regressor) or the anomaly score (above 0 is
    an anomaly). ``predict_label('NAME', ...)`` returns the predicted class as VARCHAR
    (``anomaly``/``normal`` for a detector). ``'NAME@3'`` pins version 3; a bare name
    uses the latest version (looked up again at most every second, not per chunk).
    """
    from duckdb import sqltypes

    models = _Resolver(registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry))

    def predict(name: pa.Array, *columns: pa.Array) -> pa.Array:
        return _apply(models, name, columns, labels=False)

    def predict_label(name: pa.Array, *columns: pa.Array) -> pa.Array:
        return _apply(models, name, columns, labels=True)

    # parameters=None and *columns: DuckDB registers a variadic function
    con.create_function("predict", predict, None, sqltypes.DOUBLE, type="arrow")
    con.create_function("predict_label", predict_label, None, sqltypes.VARCHAR, type="arrow")


def _apply(
    models: _Resolver, names: pa.Array, columns: tuple[pa.Array, ...], *, labels: bool
) -> pa.Array:
    if not columns:
        raise FeatureError("predict() needs the model name and its feature columns")
    distinct = pc.unique(names).to_pylist()
    if len(distinct) == 1:
        return _score(models.model(distinct[0]), columns, labels)
    # several model names in one chunk: score each name's rows on their own
    out: list[Any] = [None] * len(names)
    for name in distinct:
        mask = pc.equal(names, name) if name is not None else pc.is_null(names)
        picked = tuple(pc.filter(c, mask) for c in columns)
        scored = _score(models.model(name), picked, labels).to_pylist()
        for i, value in zip(
            np.flatnonzero(mask.to_numpy(zero_copy_only=False)), scored, strict=True
        ):
            out[i] = value
    return pa.array(out, type=pa.string() if labels else pa.float64())


class _Resolver:
    """Model names to loaded models; the latest version is looked up again after
    ``REFRESH_S``, so a chunk costs no directory listing."""

    REFRESH_S = 1.0

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._latest: dict[str, tuple[float, Model]] = {}

    def model(self, spec: str | None) -> Model:
        if not spec:
            raise ModelError("predict(): the model name is NULL or empty")
        name, _, version = spec.partition("@")
        if version:
            if not version.isdigit():
                raise ModelError(f"predict(): {spec!r}: a version is written NAME@3")
            return self.registry.load(name, int(version))
        now = time.monotonic()
        cached = self._latest.get(name)
        if cached is not None and now - cached[0] < self.REFRESH_S:
            return cached[1]
        model = self.registry.load(name)
        self._latest[name] = (now, model)
        return model


def _score(model: Model, columns: tuple[pa.Array, ...], labels: bool) -> pa.Array:
    model.check_width(len(columns))
    arrays = []
    for position, (column, feature) in enumerate(zip(columns, model.info.features, strict=True)):
        kind = column.type
        if not _numeric(kind):
            raise FeatureError(
                f"predict({model.info.name!r}, ...): feature {position + 1} ({feature!r}) "
                f"must be a number, got {kind}"
            )
        if not pa.types.is_float64(kind):
            column = column.cast(pa.float64())
        arrays.append(column.to_numpy(zero_copy_only=False))
    x = np.column_stack(arrays) if len(arrays) > 1 else arrays[0].reshape(-1, 1)
    valid = None
    if model.info.kind == "anomaly":
        # IsolationForest cannot take NaN: rows with a null feature score NULL
        nan = np.isnan(x).any(axis=1)
        if nan.any():
            valid = ~nan
            x = x[valid]
    result: Any = model.labels(x) if labels else model.score(x)
    kind = pa.string() if labels else pa.float64()
    if valid is None:
        return pa.array(result, type=kind)
    full: list[Any] = [None] * len(valid)
    for i, value in zip(np.flatnonzero(valid), result, strict=True):
        full[i] = value if labels else float(value)
    return pa.array(full, type=kind)


def _numeric(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )
