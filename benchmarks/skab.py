"""Thin wrapper: ``python benchmarks/skab.py [OPTIONS]`` is ``haeryu bench skab [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.skab`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "skab", *sys.argv[1:]])
