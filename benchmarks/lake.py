"""Thin wrapper: ``python benchmarks/lake.py [OPTIONS]`` is ``haeryu bench lake [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.lake`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "lake", *sys.argv[1:]])
