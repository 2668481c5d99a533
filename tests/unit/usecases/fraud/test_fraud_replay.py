"""haeryu fraud replay on a file in another data set's spelling (the handbook's columns)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from haeryu.cli import app
from haeryu.usecases.fraud.replay import ReplayError, normalize, parse_column_map
from support.fraud import HISTORY_DAYS, T0, Trained


def _handbook_csv(trained: Trained, path: Path) -> Path:
    frame = trained.history.select(
        TRANSACTION_ID=pl.col("tx_id"),
        TX_DATETIME=pl.from_epoch("ts", time_unit="ms").dt.strftime("%Y-%m-%d %H:%M:%S"),
        CUSTOMER_ID=pl.col("customer_id"),
        TERMINAL_ID=pl.col("merchant_id"),
        TX_AMOUNT=pl.col("amount"),
        TX_FRAUD=pl.col("is_fraud"),
    )
    frame.write_csv(path)
    return path


@pytest.mark.timeout(300)  # trains a model; minutes only on a crowded machine
def test_replay_trains_before_and_scores_after_and_prints_json_last(
    trained: Trained, tmp_path: Path
) -> None:
    path = _handbook_csv(trained, tmp_path / "transactions.csv")
    until = "2026-01-13T00:00:00"
    result = CliRunner().invoke(
        app, ["fraud", "replay", str(path), "--train-until", until, "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    for key in (
        "precision",
        "recall",
        "false_positive_rate",
        "roc_auc",
        "average_precision",
        "card_precision_at_100",
    ):
        assert key in report
    scored = trained.history.filter(pl.col("ts") >= T0 + 12 * 86_400_000)
    assert report["scored"] == scored.height
    assert report["frauds"] == scored["is_fraud"].sum()
    # Amount, merchant and card alone (no place, device or category) still rank fraud.
    assert report["roc_auc"] > 0.7
    assert HISTORY_DAYS > 12


def test_missing_columns_are_named_and_nothing_is_scored(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pl.DataFrame({"card": ["a"], "when": ["2026-01-01 00:00:00"], "shop": ["m"]}).write_csv(path)
    result = CliRunner().invoke(app, ["fraud", "replay", str(path)])
    assert result.exit_code == 1
    assert "cannot find column(s) ts, amount, merchant_id" in result.output
    assert "--column-map" in result.output


def test_column_map_and_bad_rows() -> None:
    raw = pl.DataFrame(
        {
            "CARD": ["a", "b"],
            "WHEN": [1_767_225_600, 1_767_225_660],
            "EUR": [10.0, -1.0],
            "POS": ["x", "y"],
        }
    )
    mapping = parse_column_map("customer_id=CARD,ts=WHEN,amount=EUR,merchant_id=POS")
    with pytest.raises(ReplayError, match="1 row"):
        normalize(raw, mapping, None)
    good = normalize(raw.with_columns(EUR=pl.lit(5.0)), mapping, None)
    assert good["ts"].to_list() == [1_767_225_600_000, 1_767_225_660_000]  # seconds -> ms
    with pytest.raises(ReplayError, match="OURS=THEIRS"):
        parse_column_map("customer_id")
    with pytest.raises(ReplayError, match="unknown column 'cardholder'"):
        parse_column_map("cardholder=CARD")
