"""Score a stream's micro-batches with a registered model.

``stream.map_batches(score_with("pump", into="anomaly"))`` adds one column to each batch,
computed by one model call over the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from haeryu.stores.models.registry import Model, ModelRegistry


def score_with(
    name: str,
    into: str = "score",
    *,
    registry: ModelRegistry | Path | str | None = None,
    version: int | None = None,
    label: str | None = None,
) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A ``map_batches`` function adding the model's score as column ``into``.

    The features are read by name from the batch. The version is fixed at the first batch
    (``version=`` or the latest then), so a run scores with one model throughout and a
    replay after a crash gives the same scores. ``label=`` adds the predicted label too.
    Rows with a null feature get a null score from an anomaly detector.
    """
    models = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
    pinned: list[Model] = []

    def score(batch: pl.DataFrame) -> pl.DataFrame:
        if not pinned:
            pinned.append(models.load(name, version))
        model = pinned[0]
        x = model.matrix(batch)
        keep = np.ones(len(x), dtype=bool)
        if model.info.kind == "anomaly":
            keep = ~np.isnan(x).any(axis=1)
        scores = np.full(len(x), np.nan)
        scores[keep] = model.score(x[keep])
        columns = [pl.Series(into, scores, dtype=pl.Float64).fill_nan(None)]
        if label is not None:
            labels: list[str | None] = [None] * len(x)
            for i, value in zip(np.flatnonzero(keep), model.labels(x[keep]), strict=True):
                labels[i] = value
            columns.append(pl.Series(label, labels, dtype=pl.String))
        return batch.with_columns(columns)

    return score
