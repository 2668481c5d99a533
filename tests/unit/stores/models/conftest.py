from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from haeryu.stores.models import ModelRegistry


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models: OpenMP threads spinning on a shared 2-core machine only cost time."""
    with threadpool_limits(1):
        yield
