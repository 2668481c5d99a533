"""A small simulated card world with a model trained on its history (fraud tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from haeryu.stores.models import ModelRegistry
from haeryu.usecases.fraud.model import featurize, train
from haeryu.usecases.fraud.profiles import profiles_from_frame
from haeryu.usecases.fraud.simulator import DAY_MS, generate
from haeryu.usecases.fraud.world import World, build_world

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
HISTORY_DAYS = 16


@dataclass
class Trained:
    """The world, its labelled history, profiles, and the registry holding the model."""

    world: World
    history: pl.DataFrame
    profiles: pl.DataFrame
    models: Path
    version: int


def trained_world(models: Path) -> Trained:
    """1,000 cards, 16 days of history (1 % fraud), a small model trained on the last 6."""
    world = build_world(1000, seed=11)
    end = T0 + HISTORY_DAYS * DAY_MS
    history = generate(world, T0, end, seed=11, fraud_share=0.01)
    rows = featurize(history, cut_ms=end - 6 * DAY_MS)
    info = train(ModelRegistry(models), rows, params={"max_iter": 60}, compile=False)
    return Trained(world, history, profiles_from_frame(history), models, info.version)
