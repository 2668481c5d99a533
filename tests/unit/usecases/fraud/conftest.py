from __future__ import annotations

import pytest

from support.fraud import Trained, trained_world


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A small world with a model trained on its history, shared by the fraud tests."""
    return trained_world(tmp_path_factory.mktemp("models"))
