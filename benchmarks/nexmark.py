"""NEXMark benchmark: ``python benchmarks/nexmark.py [--events N] [--queries q0,q5]``.

The implementation lives in :mod:`haeryu.bench.nexmark` so ``haeryu bench nexmark`` can
run it from an installed package; see :mod:`haeryu.bench.nexmark.report`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from haeryu.bench import nexmark


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark with command-line arguments ``argv``."""
    return nexmark.main(argv)


if __name__ == "__main__":
    sys.exit(main())
