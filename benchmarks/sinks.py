"""Thin wrapper: ``python benchmarks/sinks.py [OPTIONS]`` is ``haeryu bench sinks [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.sinks`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "sinks", *sys.argv[1:]])
