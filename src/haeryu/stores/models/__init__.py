"""In-database ML: a versioned model registry, ``predict()`` in SQL, scoring in pipelines.

See docs/models.md.
"""

from haeryu.stores.models.errors import FeatureError, ModelError, UnknownModelError
from haeryu.stores.models.pipeline import score_with
from haeryu.stores.models.registry import Model, ModelInfo, ModelRegistry, default_root
from haeryu.stores.models.sql import register_sql_functions

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
