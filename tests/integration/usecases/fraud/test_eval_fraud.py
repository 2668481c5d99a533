"""A short `haeryu eval fraud` through the whole stack: broker process, batch layer,
pipelines fraud-detection and fraud-audit in their own process, lake audit table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from haeryu.cli import app


@pytest.mark.timeout(420)  # trains a model and starts a broker and a pipeline process
def test_short_eval_decides_every_transaction_and_reports_the_keys() -> None:
    args = ["eval", "fraud", "--seed", "3", "--duration", "4s", "--rate", "300"]
    args += ["--customers", "600", "--history", "8d", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    for key in (
        "precision",
        "recall",
        "false_positive_rate",
        "latency_p50_ms",
        "latency_p99_ms",
        "per_pattern",
    ):
        assert key in report
    assert report["missing_decisions"] == 0
    assert report["decided"] == report["sent"] == 1200
    assert report["audit_rows"] == report["sent"]  # every decision is in the lake
    assert report["latency_p50_ms"] > 0
    assert report["false_positive_rate"] < 0.05
    assert set(report["per_pattern"]) >= {"card_testing", "impossible_travel", "none"}
