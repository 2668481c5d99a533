"""Thin wrapper: ``python benchmarks/log.py [OPTIONS]`` is ``haeryu bench log [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.log`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "log", *sys.argv[1:]])
