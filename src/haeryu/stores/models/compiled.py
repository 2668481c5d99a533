"""Gradient-boosted trees compiled to native code, for fast scoring.

scikit-learn walks its trees in an interpreter loop (about 200k rows/s per core for 100
trees on 10 features). Treelite reads the fitted model and TL2cgen turns every tree into
C if/else code that gcc compiles into a shared library next to the model: the same
predictions (to the last bit or so) at about twice the speed. Only binary classifiers and
regressors are compiled; anything else, or a machine without gcc, keeps scikit-learn.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from haeryu.stores.models.errors import ModelError

log = logging.getLogger(__name__)
LIBRARY = "model.so"


def compilable(estimator: Any) -> bool:
    """Whether ``estimator`` is a HistGradientBoosting regressor or binary classifier."""
    name = type(estimator).__name__
    if name == "HistGradientBoostingRegressor":
        return True
    return name == "HistGradientBoostingClassifier" and len(estimator.classes_) == 2


def compile_library(estimator: Any, directory: Path) -> str | None:
    """Compile ``estimator`` into ``directory/model.so``; its SHA-256, or None if it
    cannot be compiled here (the model then scores with scikit-learn)."""
    if not compilable(estimator) or shutil.which("gcc") is None:
        return None
    import tl2cgen
    import treelite

    path = directory / LIBRARY
    tl2cgen.export_lib(
        treelite.sklearn.import_model(estimator),
        toolchain="gcc",
        libpath=str(path),
        params={"parallel_comp": 8},
        nthread=2,
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CompiledModel:
    """A compiled model's predictions: the score ``Model.score`` would give."""

    def __init__(self, path: Path, sha256: str) -> None:
        import tl2cgen

        if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            raise ModelError(f"{path} does not match the checksum recorded when it was built")
        self._tl2cgen = tl2cgen
        self._predictor = tl2cgen.Predictor(str(path), nthread=1)

    def predict(self, x: np.ndarray) -> np.ndarray:
        matrix = self._tl2cgen.DMatrix(np.ascontiguousarray(x, dtype=np.float64))
        return np.asarray(self._predictor.predict(matrix), dtype=np.float64).reshape(len(x))
