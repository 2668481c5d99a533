"""Thin wrapper: ``python benchmarks/search_api.py [OPTIONS]`` is ``haeryu bench search-api``.

The benchmark lives in :mod:`haeryu.bench.search_api`, so it also runs from an installed
package.
"""

from __future__ import annotations

import sys

from haeryu.cli import app

if __name__ == "__main__":
    app(["bench", "search-api", *sys.argv[1:]])
