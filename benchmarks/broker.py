"""Thin wrapper: ``python benchmarks/broker.py [OPTIONS]`` is ``haeryu bench broker [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.broker`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "broker", *sys.argv[1:]])
