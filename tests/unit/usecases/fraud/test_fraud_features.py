"""Recent-state features against a plain Python reference; batch and stream agree."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from haeryu.usecases.fraud.features import RECENT, with_recent


def _rows(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, 3 * 86_400_000, n)) + 1_700_000_000_000
    return pl.DataFrame(
        {
            "tx_id": [str(i) for i in range(n)],
            "customer_id": rng.choice(["a", "b", "c"], n),
            "ts": ts,
            "amount": rng.choice([1000.0, 8000.0, 50_000.0], n),
            "lat": rng.uniform(33, 38, n),
            "lon": rng.uniform(126, 130, n),
            "device_id": rng.choice(["pos", "d1", "d2"], n),
        }
    )


def _reference(frame: pl.DataFrame) -> list[dict[str, float | None]]:
    rows = frame.to_dicts()
    out = []
    for r in rows:
        mine = [q for q in rows if q["customer_id"] == r["customer_id"]]
        earlier = [q for q in mine if (q["ts"], int(q["tx_id"])) < (r["ts"], int(r["tx_id"]))]

        def within(ms: int, r: dict = r, mine: list = mine) -> list[dict]:
            return [q for q in mine if r["ts"] - ms < q["ts"] <= r["ts"]]

        prev = earlier[-1] if earlier else None
        dist = secs = None
        if prev is not None:
            rad = math.pi / 180
            a = (
                math.sin((r["lat"] - prev["lat"]) * rad / 2) ** 2
                + math.cos(prev["lat"] * rad)
                * math.cos(r["lat"] * rad)
                * math.sin((r["lon"] - prev["lon"]) * rad / 2) ** 2
            )
            dist = 2 * 6371.0 * math.asin(math.sqrt(a))
            secs = (r["ts"] - prev["ts"]) / 1000
        seen = {q["device_id"] for q in earlier}
        out.append(
            {
                "tx_1m": len(within(60_000)),
                "tx_1h": len(within(3_600_000)),
                "tx_24h": len(within(86_400_000)),
                "sum_1h": sum(q["amount"] for q in within(3_600_000)),
                "small_1h": sum(q["amount"] < 5000 for q in within(3_600_000)),
                "secs_since_prev": secs,
                "dist_prev_km": dist,
                "device_new_24h": int(r["device_id"] != "pos" and r["device_id"] not in seen),
            }
        )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recent_features_match_the_reference(seed: int) -> None:
    frame = _rows(300, seed)
    got = with_recent(frame).select(RECENT).to_dicts()
    for want, have in zip(_reference(frame), got, strict=True):
        for key, value in want.items():
            if value is None:
                assert have[key] is None, key
            else:
                assert have[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key


def test_a_batch_after_its_past_gives_what_one_pass_over_all_rows_gives() -> None:
    frame = _rows(400, 7)
    whole = with_recent(frame).select("tx_id", *RECENT)
    split = 250
    past = frame.head(split).select("customer_id", "ts", "amount", "lat", "lon", "device_id")
    later = with_recent(frame.slice(split), past).select("tx_id", *RECENT)
    # device_new_24h only looks as far back as the past it is given: the rest must agree.
    columns = [c for c in RECENT if c != "device_new_24h"]
    assert later.select(columns).equals(whole.slice(split).select(columns))
