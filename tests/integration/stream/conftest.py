"""Fixtures for stream integration tests (the ``broker`` fixture comes from tests/conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

# Test helpers live next to the tests; importlib import mode does not add this folder.
sys.path.insert(0, str(Path(__file__).parent))
