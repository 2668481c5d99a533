"""``haeryu eval factory`` end to end on a broker process, kept short and cheap: the
figures are not judged here (a few seconds of a tiny factory), only that every reading
went through the pipeline and the JSON line carries what the issue asks for.  The
scoring itself is tested on hand-made cases in tests/unit/usecases/factory.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from haeryu.cli import app


def test_eval_factory_runs_the_whole_pipeline() -> None:
    args = [
        "eval",
        "factory",
        "--duration",
        "8s",
        "--warmup",
        "3s",
        "--rate",
        "500",
        "--machines",
        "5",
    ]
    result = CliRunner().invoke(app, [*args, "--anomaly-rate", "0.2", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    for field in (
        "precision",
        "recall",
        "f1",
        "delay_p50_s",
        "delay_p95_s",
        "latency_p99_ms",
        "per_kind",
    ):
        assert field in summary
    assert summary["processed"] == summary["readings"] == 8 * 500
    assert summary["episodes"] > 0 and summary["detected"] > 0
    assert summary["latency_p99_ms"] is not None and summary["latency_p99_ms"] > 0
