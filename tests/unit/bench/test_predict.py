"""`haeryu bench predict` runs end to end and prints its figures (tiny sizes)."""

from __future__ import annotations

import pytest

from haeryu.bench import predict


def test_the_predict_benchmark_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code = predict.run(rows=20_000, trees=3, repeats=1, compiled=False)
    shown = capsys.readouterr().out
    assert code in (0, 1)  # the floor depends on the machine; the figures must be there
    for line in ("best, rows/s", "rows per CPU-second", "cores used", "scikit-learn", "floor"):
        assert line in shown
