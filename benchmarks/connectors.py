"""Thin wrapper: ``python benchmarks/connectors.py [OPTIONS]`` is ``haeryu bench connect [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.connectors`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "connect", *sys.argv[1:]])
