"""One module per Kafka API. Importing :func:`load_all` registers every handler."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every handler module so each registers itself in the registry."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
