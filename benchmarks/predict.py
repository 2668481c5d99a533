"""Thin wrapper: ``python benchmarks/predict.py [OPTIONS]`` is ``haeryu bench predict [OPTIONS]``.

The benchmark lives in :mod:`haeryu.bench.predict`, so it also runs from an installed package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "predict", *sys.argv[1:]])
