"""Benchmarks shipped with the package, so ``haeryu bench ...`` works after pip install."""
