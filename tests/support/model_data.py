"""Small, deterministic training data for the model registry's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

SKAB = Path(__file__).resolve().parents[3] / "shared" / "data" / "skab"
FAST = {"max_iter": 15}
SKAB_FEATURES = [
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
]


def sensors(n: int = 1200, seed: int = 0) -> pl.DataFrame:
    """Three readings; ``hot`` is 1 when a + b > 1 (learnable), ``level`` is linear in them."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame({"a": rng.random(n), "b": rng.random(n), "c": rng.integers(0, 5, n)})
    return frame.with_columns(
        hot=(pl.col("a") + pl.col("b") > 1).cast(pl.Int64),
        level=3 * pl.col("a") - 2 * pl.col("b") + pl.col("c"),
    )
