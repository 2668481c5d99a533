"""Helpers of the lake's integration tests live next to them."""

from __future__ import annotations

import sys
from pathlib import Path

# importlib import mode does not add this folder; the tests import search_pipeline from it.
sys.path.insert(0, str(Path(__file__).parent))
