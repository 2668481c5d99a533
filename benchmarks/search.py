"""Thin wrapper: ``python benchmarks/search.py [OPTIONS]`` is ``haeryu bench search [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.search`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "search", *sys.argv[1:]])
