"""Thin wrapper: ``python benchmarks/engine.py [OPTIONS]`` is ``haeryu bench engine [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.engine`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "engine", *sys.argv[1:]])
