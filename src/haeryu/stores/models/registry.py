"""The model registry: one directory per model, one sub-directory per version.

```
<root>/<name>/v1/model.skops   the estimator (skops, see storage.py)
<root>/<name>/v1/model.json    features and dtypes, query, metrics, rows, train time
```

A version is written into a temporary directory and renamed into place, so a reader
never sees half a model, and two trainers of one name get two versions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from haeryu.stores.models import compiled, storage
from haeryu.stores.models.errors import FeatureError, ModelError, UnknownModelError
from haeryu.stores.models.training import Kind, anomaly_score, fit, to_matrix

DEFAULT_ROOT = Path("data/models")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
_VERSION = re.compile(r"^v([0-9]+)$")


def default_root() -> Path:
    """``$HAERYU_MODELS``, or ``data/models`` under the working directory."""
    return Path(os.environ.get("HAERYU_MODELS", DEFAULT_ROOT))


@dataclass
class ModelInfo:
    """What the registry knows about one version of a model (its ``model.json``)."""

    name: str
    version: int
    kind: Kind
    features: list[str]
    dtypes: list[str]
    target: str | None
    query: str | None
    metrics: dict[str, Any]
    rows: dict[str, int]
    train_seconds: float
    trained_at: str
    classes: list[Any] | None = None
    sklearn_version: str = ""
    estimator: str = ""
    sha256: str = ""
    compiled_sha256: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> ModelInfo:
        return cls(**json.loads(text))


_controller: Any = None


def _one_thread() -> Any:
    """A context that runs the model's OpenMP loops on the calling thread only.

    Scoring calls are small (a DuckDB chunk, a micro-batch) and already run side by side
    in DuckDB's threads and the pipeline's workers; OpenMP threads spinning on top of
    them made a 64-row batch take seconds on a busy 2-core machine.
    """
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="openmp")


class Model:
    """A loaded model version: scores feature matrices and frames."""

    def __init__(
        self, info: ModelInfo, estimator: Any, native: compiled.CompiledModel | None = None
    ) -> None:
        self.info = info
        self.estimator = estimator
        self.native = native

    def check_width(self, width: int) -> None:
        """Refuse a call with another number of features than the model was trained on."""
        expected = len(self.info.features)
        if width != expected:
            raise FeatureError(
                f"model {self.info.name!r} v{self.info.version} takes {expected} features, "
                f"in this order: {', '.join(self.info.features)}; got {width}"
            )

    def score(self, x: np.ndarray) -> np.ndarray:
        """One float per row: the positive class's probability (binary classifier), the
        predicted value (regressor) or the anomaly score (above 0 is flagged)."""
        self.check_width(x.shape[1])
        if len(x) == 0:
            return np.empty(0, dtype=np.float64)
        kind = self.info.kind
        if kind == "classifier" and len(self.info.classes or ()) != 2:
            raise ModelError(
                f"model {self.info.name!r} has {len(self.info.classes or ())} classes: "
                "a score is the probability of the positive class, so use predict_label()"
            )
        if self.native is not None:
            return self.native.predict(x)  # one thread already (nthread=1)
        with _one_thread():
            if kind == "regressor":
                return np.asarray(self.estimator.predict(x), dtype=np.float64)
            if kind == "anomaly":
                return anomaly_score(self.estimator, x)
            return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype=np.float64)

    def labels(self, x: np.ndarray) -> list[str]:
        """The predicted class as text (classifier), or ``anomaly``/``normal``."""
        self.check_width(x.shape[1])
        if self.info.kind == "regressor":
            raise ModelError(
                f"model {self.info.name!r} is a regressor: it has no labels, use predict()"
            )
        if len(x) == 0:
            return []
        with _one_thread():
            if self.info.kind == "anomaly":
                scores = anomaly_score(self.estimator, x)
                return ["anomaly" if s > 0 else "normal" for s in scores]
            return [str(v) for v in self.estimator.predict(x)]

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The model's features taken by name from ``frame``, in the stored order."""
        missing = [f for f in self.info.features if f not in frame.columns]
        if missing:
            raise FeatureError(
                f"model {self.info.name!r} v{self.info.version} needs feature column(s) "
                f"{', '.join(repr(m) for m in missing)}, not in the data; "
                f"columns: {', '.join(frame.columns)}"
            )
        for name in self.info.features:
            dtype = frame.schema[name]
            if not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null):
                raise FeatureError(f"feature column {name!r} is {dtype}, not a number")
        return to_matrix(frame, self.info.features)


class ModelRegistry:
    """Trains, stores, lists and loads versioned models under ``root``."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._cache: dict[tuple[str, int], Model] = {}
        self._lock = threading.Lock()

    def train(
        self,
        name: str,
        data: str | pl.DataFrame,
        target: str | None,
        kind: Kind = "classifier",
        *,
        con: Any = None,
        features: list[str] | None = None,
        params: dict[str, Any] | None = None,
        test_fraction: float = 0.2,
        seed: int = 0,
        compile: bool = False,
    ) -> ModelInfo:
        """Train a new version of ``name`` on ``data`` (SQL run on ``con``, a DuckDB
        connection, or a Polars frame) and store it; returns its :class:`ModelInfo`.

        ``compile=True`` also builds native code for a gradient-boosted model (about
        twice the scoring speed; takes seconds and needs gcc, see ``compiled.py``).
        """
        import sklearn

        _check_name(name)
        query: str | None = None
        if isinstance(data, str):
            query = data
            frame = _run_sql(data, con)
        else:
            frame = data
        fitted = fit(
            frame,
            target,
            kind,
            features=features,
            test_fraction=test_fraction,
            seed=seed,
            params=params,
        )
        info = ModelInfo(
            name=name,
            version=0,
            kind=kind,
            features=fitted.features,
            dtypes=fitted.dtypes,
            target=target,
            query=query,
            metrics=fitted.metrics,
            rows=fitted.rows,
            train_seconds=round(fitted.train_seconds, 3),
            trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
            classes=fitted.classes,
            sklearn_version=sklearn.__version__,
            estimator=type(fitted.estimator).__name__,
            params=dict(params or {}),
        )
        return self._store(info, fitted.estimator, compile=compile)

    def _store(self, info: ModelInfo, estimator: Any, *, compile: bool) -> ModelInfo:
        home = self.root / info.name
        home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".training-", dir=home))
        try:
            info.sha256 = storage.save(estimator, staging / "model.skops")
            if compile:
                info.compiled_sha256 = compiled.compile_library(estimator, staging)
            while True:
                info.version = (max(self._versions(info.name), default=0)) + 1
                (staging / "model.json").write_text(info.to_json())
                try:
                    staging.rename(home / f"v{info.version}")
                    return info
                except OSError:
                    if not (home / f"v{info.version}").exists():
                        raise  # not a lost race for the version number
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def names(self) -> list[str]:
        """Every registered model name, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._versions(p.name))

    def _versions(self, name: str) -> list[int]:
        home = self.root / name
        if not home.is_dir():
            return []
        return sorted(int(m.group(1)) for e in os.scandir(home) if (m := _VERSION.match(e.name)))

    def versions(self, name: str) -> list[ModelInfo]:
        """Every version of ``name``, oldest first."""
        numbers = self._versions(name)
        if not numbers:
            raise UnknownModelError(name, self.names())
        return [self.info(name, v) for v in numbers]

    def list(self) -> list[ModelInfo]:
        """The latest version of every model."""
        return [self.info(name) for name in self.names()]

    def latest_version(self, name: str) -> int:
        """The highest version number of ``name``."""
        numbers = self._versions(name)
        if not numbers:
            raise UnknownModelError(name, self.names())
        return numbers[-1]

    def info(self, name: str, version: int | None = None) -> ModelInfo:
        """The metadata of ``name`` at ``version`` (default: the latest)."""
        _check_name(name, known=self.names)
        number = self.latest_version(name) if version is None else version
        path = self.root / name / f"v{number}" / "model.json"
        if not path.is_file():
            raise UnknownModelError(name, self.names(), version)
        return ModelInfo.from_json(path.read_text())

    def load(self, name: str, version: int | None = None) -> Model:
        """Load ``name`` at ``version`` (default: the latest); versions are cached."""
        _check_name(name, known=self.names)
        number = self.latest_version(name) if version is None else version
        key = (name, number)
        with self._lock:
            model = self._cache.get(key)
            if model is None:
                info = self.info(name, number)
                path = self.root / name / f"v{number}" / "model.skops"
                native = None
                if info.compiled_sha256:
                    library = path.with_name(compiled.LIBRARY)
                    native = compiled.CompiledModel(library, info.compiled_sha256)
                model = Model(info, storage.load(path, info.sha256), native)
                self._cache[key] = model
        return model


def _check_name(name: str, known: Any = None) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        if known is not None:
            raise UnknownModelError(str(name), known())
        raise ModelError(
            f"model name {name!r} must start with a letter and hold only letters, digits, '_', '.', '-'"
        )


def _run_sql(sql: str, con: Any) -> pl.DataFrame:
    import duckdb

    connection = con if con is not None else duckdb.connect()
    try:
        return connection.sql(sql).pl()
    except duckdb.Error as exc:
        raise ModelError(f"the training query failed: {exc}") from exc
