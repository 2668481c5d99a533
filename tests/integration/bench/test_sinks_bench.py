"""``haeryu bench sinks`` on a few rows: it starts both servers and every row arrives."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from haeryu.bench.servers import influxd, postgres_bin


@pytest.mark.skipif(
    postgres_bin() is None or influxd() is None, reason="needs postgresql and influxdb"
)
def test_bench_sinks_prints_a_rate_per_target() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "haeryu", "bench", "sinks", "--rows", "3000", "--batch", "500"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rates = re.findall(
        r"^(postgres .*|influx .*)\s+3,000 rows .* ([\d,]+) rows/s$", done.stdout, re.M
    )
    assert [label.split()[0] for label, _ in rates] == ["postgres", "postgres", "influx"], (
        done.stdout
    )
    assert all(int(rate.replace(",", "")) > 0 for _, rate in rates)
