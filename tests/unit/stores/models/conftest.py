from __future__ import annotations

from pathlib import Path

import pytest

from haeryu.stores.models import ModelRegistry


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")
