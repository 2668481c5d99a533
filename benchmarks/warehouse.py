"""Thin wrapper: ``python benchmarks/warehouse.py [OPTIONS]`` is ``haeryu bench warehouse [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.warehouse`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "warehouse", *sys.argv[1:]])
