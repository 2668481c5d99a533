"""Models on disk with skops: no pickle, so loading a file runs none of its code.

skops refuses every type it does not know to be safe. The tree structures of
HistGradientBoosting and IsolationForest are trusted here by name: their node arrays are indexed
without bounds checks, so a forged file could crash the process when it predicts. The
registry directory must therefore be as trusted as the code: only load models that this
installation trained (docs/models.md, "Trust").
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from haeryu.stores.models.errors import ModelError

# the tree structures of HistGradientBoosting and IsolationForest (see the module docstring)
TRUSTED_TYPES = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
]


def save(estimator: Any, path: Path) -> str:
    """Write ``estimator`` to ``path``; returns the file's SHA-256."""
    import skops.io as sio

    data = sio.dumps(estimator)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load(path: Path, sha256: str) -> Any:
    """Read an estimator back, refusing a file that changed since it was written."""
    import skops.io as sio

    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelError(f"{path} does not match the checksum recorded when it was trained")
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelError(f"{path} holds types haeryu does not load: {', '.join(untrusted)}")
    return sio.loads(data, trusted=TRUSTED_TYPES)
