"""Stream engine benchmark: ``python benchmarks/engine.py [--events N] [--vs quixstreams]``.

The implementation lives in :mod:`haeryu.bench.engine` so ``haeryu bench engine`` can
run it from an installed package; see its docstring for what is measured.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from haeryu.bench import engine as bench


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv``."""
    return bench.main(argv)


if __name__ == "__main__":
    sys.exit(main())
