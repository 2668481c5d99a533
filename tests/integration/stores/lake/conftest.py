"""Helpers of the lake's integration tests live next to them."""

from __future__ import annotations

import sys
from pathlib import Path

# importlib import mode does not add this folder; the tests import lake_s3 from it.
sys.path.insert(0, str(Path(__file__).parent))
