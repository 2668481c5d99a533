"""In-database ML: a versioned model registry, ``predict()`` in SQL, scoring in pipelines.

See docs/models.md. The names below are imported on first use, so ``haeryu --help``
does not pay for NumPy and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from haeryu.stores.models.errors import FeatureError, ModelError, UnknownModelError
    from haeryu.stores.models.pipeline import score_with
    from haeryu.stores.models.registry import Model, ModelInfo, ModelRegistry, default_root
    from haeryu.stores.models.sql import register_sql_functions

_WHERE = {
    "FeatureError": "errors",
    "ModelError": "errors",
    "UnknownModelError": "errors",
    "score_with": "pipeline",
    "Model": "registry",
    "ModelInfo": "registry",
    "ModelRegistry": "registry",
    "default_root": "registry",
    "register_sql_functions": "sql",
}

__all__ = [
    "FeatureError",
    "Model",
    "ModelError",
    "ModelInfo",
    "ModelRegistry",
    "UnknownModelError",
    "default_root",
    "register_sql_functions",
    "score_with",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
