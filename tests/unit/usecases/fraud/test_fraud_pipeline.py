"""Pipeline fraud-detection under run_local: decisions, notifications, reasons, state."""

from __future__ import annotations

import json

import polars as pl
import pytest

from haeryu.testing import run_local
from haeryu.usecases.fraud.pipeline import NOTIFICATION_COLUMNS, FraudConfig, detection_pipeline
from haeryu.usecases.fraud.simulator import DAY_MS, generate
from support.fraud import HISTORY_DAYS, T0, Trained


def _run(trained: Trained, live: pl.DataFrame, batch_size: int) -> pl.DataFrame:
    config = FraudConfig(models=str(trained.models))
    profiles = [json.loads(line) for line in trained.profiles.write_ndjson().splitlines()]
    result = run_local(
        detection_pipeline(config),
        {
            "fraud-profiles": profiles,
            "card-transactions": live.drop("is_fraud", "fraud_pattern").to_dicts(),
        },
        keys={
            "fraud-profiles": trained.profiles["customer_id"].to_list(),
            "card-transactions": live["customer_id"].to_list(),
        },
        batch_size=batch_size,
        partitions=2,
    )
    return result.topic("fraud-decisions"), result.topic("fraud-notifications")


@pytest.mark.timeout(300)  # trains the shared model first
def test_every_transaction_gets_one_decision_and_alerts_carry_reasons(trained: Trained) -> None:
    start = T0 + HISTORY_DAYS * DAY_MS
    live = generate(trained.world, start, start + DAY_MS, seed=99, fraud_share=0.01)
    decisions, notes = _run(trained, live, batch_size=400)
    assert sorted(decisions["tx_id"].to_list()) == sorted(live["tx_id"].to_list())
    assert set(decisions["decision"].unique()) <= {"APPROVE", "STEP_UP", "BLOCK"}
    assert (decisions["model_version"] == f"fraud@v{trained.version}").all()
    flagged = decisions.filter(pl.col("decision") != "APPROVE")
    assert sorted(notes["tx_id"].to_list()) == sorted(flagged["tx_id"].to_list())
    assert [c for c in notes.columns if not c.startswith("_")] == NOTIFICATION_COLUMNS
    assert (flagged["reasons"].list.len() > 0).all()
    # Thresholds decide: BLOCK at or above 0.8, STEP_UP from 0.3.
    assert (flagged.filter(pl.col("decision") == "BLOCK")["score"] >= 0.8).all()
    assert (decisions.filter(pl.col("decision") == "APPROVE")["score"] < 0.3).all()
    truth = live.select("tx_id", "is_fraud")
    joined = decisions.join(truth, on="tx_id")
    caught = joined.filter(pl.col("is_fraud") == 1)["decision"] != "APPROVE"
    false_alarms = joined.filter(pl.col("is_fraud") == 0)["decision"] != "APPROVE"
    assert caught.mean() > 0.6  # type: ignore[operator]
    assert false_alarms.mean() < 0.02  # type: ignore[operator]


@pytest.mark.timeout(300)
def test_state_carried_across_batches_gives_the_features_of_one_big_batch(
    trained: Trained,
) -> None:
    start = T0 + HISTORY_DAYS * DAY_MS
    live = generate(trained.world, start, start + DAY_MS // 4, seed=5, fraud_share=0.01)
    small, _ = _run(trained, live, batch_size=37)
    big, _ = _run(trained, live, batch_size=100_000)
    columns = ["tx_id", "tx_1h", "tx_24h", "sum_24h", "dist_prev_km", "decision"]
    assert small.select(columns).sort("tx_id").equals(big.select(columns).sort("tx_id"))
