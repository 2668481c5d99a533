"""The transaction simulator: deterministic, time-ordered, every fraud pattern labelled."""

from __future__ import annotations

import polars as pl
import pytest

from haeryu.usecases.fraud.simulator import DAY_MS, PATTERNS, generate
from haeryu.usecases.fraud.world import build_world

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def test_same_seed_same_transactions_and_all_patterns_labelled() -> None:
    world = build_world(800, seed=5)
    a = generate(world, T0, T0 + 5 * DAY_MS, seed=1, fraud_share=0.02)
    b = generate(build_world(800, seed=5), T0, T0 + 5 * DAY_MS, seed=1, fraud_share=0.02)
    assert a.equals(b)
    assert a["ts"].is_sorted()
    assert a["ts"].min() >= T0 and a["ts"].max() < T0 + 5 * DAY_MS  # type: ignore[operator]
    assert a["tx_id"].n_unique() == a.height
    assert set(a["fraud_pattern"].unique()) == {"none", *PATTERNS}
    assert ((a["fraud_pattern"] != "none") == (a["is_fraud"] == 1)).all()
    share = a["is_fraud"].mean()
    assert 0.01 < share < 0.04  # type: ignore[operator]


def test_patterns_have_their_signature() -> None:
    world = build_world(2000, seed=2)
    frame = generate(world, T0, T0 + 10 * DAY_MS, seed=3, fraud_share=0.02)
    by = {name: frame.filter(pl.col("fraud_pattern") == name) for name in PATTERNS}
    assert (by["card_testing"]["amount"] <= 3000).all()
    assert by["impossible_travel"]["country"].is_in(["KR"]).not_().all()
    assert (by["impossible_travel"]["channel"] == "card_present").all()
    assert (
        by["high_risk_merchant"]["category"]
        .is_in(["gambling", "crypto", "gift_cards", "money_transfer"])
        .all()
    )
    local_hour = (by["unusual_hours"]["ts"] + 9 * 3_600_000) // 3_600_000 % 24
    assert local_hour.is_between(1, 5).mean() > 0.8  # type: ignore[operator]
    legit = frame.filter(pl.col("is_fraud") == 0)
    assert legit["country"].eq("KR").mean() > 0.95  # type: ignore[operator]


def test_a_span_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="end of the span"):
        generate(build_world(10), T0, T0)
