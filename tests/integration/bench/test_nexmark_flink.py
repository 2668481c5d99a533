"""Flink's side of the NEXMark benchmark reads the same events as haeryu's.

Needs the Flink venv (``make bench-deps``) and Java, and starting a JVM takes a minute
on a loaded machine, so it runs only with ``HAERYU_FLINK_TESTS=1``.
"""

from __future__ import annotations

import os

import polars as pl
import pytest

from haeryu.bench.nexmark import flink, generator

pytestmark = [
    pytest.mark.skipif(
        flink.unavailable_reason() is not None, reason=str(flink.unavailable_reason())
    ),
    pytest.mark.skipif(
        os.environ.get("HAERYU_FLINK_TESTS") != "1",
        reason="starts a JVM for a minute: set HAERYU_FLINK_TESTS=1 (after make bench-deps)",
    ),
]


@pytest.mark.timeout(300)
def test_flink_datagen_produces_the_generators_events() -> None:
    rows = 1_000
    theirs = flink.generated_rows(("person", "auction", "bid"), rows, seed=5)
    for kind in ("person", "auction", "bid"):
        ours = generator.GENERATORS[kind](0, rows, seed=5)
        assert len(theirs[kind]) == rows
        # Flink prints TIMESTAMP_LTZ(3) in the session time zone (UTC here), in millis.
        as_text = ours.with_columns(
            pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
            for c in ours.columns
            if c in ("date_time", "expires")
        ).cast(dict.fromkeys(ours.columns, pl.String))
        assert [list(r) for r in as_text.rows()] == theirs[kind], kind
