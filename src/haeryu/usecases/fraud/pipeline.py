"""The speed layer: pipeline ``fraud-detection`` (and ``fraud-audit`` into the lake).

```
card-transactions ─ join profiles (table: fraud-profiles) ─ key_by customer_id
   ─ update_state: recent per-card state (1 min / 1 h / 24 h, last place, devices)
   ─ features ─ rules + model score ─ decision (APPROVE / STEP_UP / BLOCK) + reasons
   ├─► fraud-decisions            (every decision, with model version and features)
   ├─► fraud-notifications        (STEP_UP and BLOCK)  ─► webhook (optional)
fraud-decisions ─ pipeline fraud-audit ─► lake table fraud_decisions (Delta)
```

The audit copy runs as its own pipeline so a lake commit never holds a decision back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from haeryu.stream import Pipeline
from haeryu.stream.sinks import Sink
from haeryu.usecases.fraud.features import (
    FEATURES,
    PAST_COLUMNS,
    keep_recent,
    with_features,
    with_recent,
)
from haeryu.usecases.fraud.model import MODEL_NAME, baseline, reasons
from haeryu.usecases.fraud.simulator import TRANSACTION_SCHEMA

log = logging.getLogger(__name__)

DECISIONS = ("APPROVE", "STEP_UP", "BLOCK")


@dataclass
class FraudConfig:
    """Topics, model and decision policy of the fraud use case (``[fraud]`` in a TOML file)."""

    transactions: str = "card-transactions"
    profiles: str = "fraud-profiles"
    decisions: str = "fraud-decisions"
    notifications: str = "fraud-notifications"
    ground_truth: str = "fraud-ground-truth"
    feedback: str = "fraud-feedback"
    audit_table: str = "fraud_decisions"
    model: str = MODEL_NAME
    model_version: int | None = None
    models: str | None = None
    lake: str | None = None
    #: score at or above which a payment asks for more authentication
    step_up: float = 0.3
    #: score at or above which a payment is refused
    block: float = 0.8
    webhook: str | None = None
    #: rules: name -> score they give when they fire (0 switches one off)
    rules: dict[str, float] = field(
        default_factory=lambda: {
            "impossible_travel": 0.9,
            "card_testing": 0.85,
            "velocity": 0.5,
            "night_spend": 0.5,
        }
    )

    @classmethod
    def from_toml(cls, path: Path | str) -> FraudConfig:
        """Read the ``[fraud]`` table of a TOML file; unknown keys are an error."""
        import tomllib

        data = tomllib.loads(Path(path).read_text()).get("fraud", {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown [fraud] setting(s) in {path}: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        config = cls(**data)
        config.check()
        return config

    def check(self) -> None:
        """Refuse thresholds that cannot make sense."""
        if not 0 <= self.step_up <= self.block <= 1:
            raise ValueError(
                f"thresholds must satisfy 0 <= step_up <= block <= 1, got step_up={self.step_up} block={self.block}"
            )


RULE_TEXT = {
    "impossible_travel": "impossible travel: {dist_prev_km:,.0f} km in {secs_since_prev:,.0f} s",
    "card_testing": "card testing: {small_1h:.0f} small payments in 1 hour",
    "velocity": "velocity: {tx_1h:.0f} payments in 1 hour ({tx_1h_over_max:.1f}x the busiest hour)",
    "night_spend": "at {local_hour:02.0f}h, when the card pays {hour_share:.1%} of the time, "
    "{amount_over_p95:.1f}x its 95th percentile",
}


RULE_INPUTS = [
    "speed_kmh",
    "dist_prev_km",
    "small_1h",
    "tx_1h",
    "tx_1h_over_max",
    "new_merchant",
    "is_night",
    "hour_share",
    "amount_over_p95",
    "local_hour",
    "secs_since_prev",
]


def rule_hits(frame: pl.DataFrame) -> dict[str, pl.Series]:
    """Which rule fires on which row (booleans), vectorized."""
    f = frame.select(RULE_INPUTS).fill_null(0)
    return {
        "impossible_travel": (f["speed_kmh"] > 1000) & (f["dist_prev_km"] > 500),
        "card_testing": f["small_1h"] >= 5,
        "velocity": (f["tx_1h"] >= 4) & (f["tx_1h_over_max"] >= 2) & (f["new_merchant"] == 1),
        "night_spend": (f["is_night"] == 1)
        & (frame["hour_share"].fill_null(1.0) < 0.02)
        & (f["amount_over_p95"] > 1.5),
    }


class Scorer:
    """Features, rules, model score, decision and reasons for a batch (one per worker)."""

    def __init__(self, config: FraudConfig) -> None:
        from haeryu.stores.models import ModelRegistry

        self.config = config
        self.registry = ModelRegistry(config.models)
        self.model: Any = None
        self.base: dict[str, float] = {}

    def load(self) -> Any:
        """The model (loaded at the first call; the version then stays fixed)."""
        if self.model is None:
            # The version is fixed at the first batch, so a replay scores with one model.
            self.model = self.registry.load(self.config.model, self.config.model_version)
            self.base = baseline(self.registry, self.config.model, self.model.info.version)
        return self.model

    def __call__(self, batch: pl.DataFrame) -> pl.DataFrame:
        return self.score(batch)

    def score(self, batch: pl.DataFrame) -> pl.DataFrame:
        """The decision rows of ``batch`` (transactions with recent and profile columns)."""
        model = self.load()
        frame = with_features(batch)
        model.check_width(len(FEATURES))
        x = frame.select(FEATURES).to_numpy().astype(np.float64, copy=False)
        model_score = model.score(x) if len(x) else np.empty(0)
        hits = rule_hits(frame)
        rule_score = np.zeros(frame.height)
        fired: list[list[str]] = [[] for _ in range(frame.height)]
        for name, mask in hits.items():
            weight = self.config.rules.get(name, 0.0)
            if weight <= 0:
                continue
            idx = np.flatnonzero(mask.to_numpy())
            rule_score[idx] = np.maximum(rule_score[idx], weight)
            if len(idx):
                rows = frame[idx].select(RULE_INPUTS).fill_null(0).to_dicts()
                for i, row in zip(idx, rows, strict=True):
                    fired[i].append(RULE_TEXT[name].format(**row))
        score = np.maximum(model_score, rule_score)
        decision = np.where(
            score >= self.config.block,
            "BLOCK",
            np.where(score >= self.config.step_up, "STEP_UP", "APPROVE"),
        )
        why: list[list[str]] = [list(r) for r in fired]
        flagged = np.flatnonzero(decision != "APPROVE")
        if len(flagged):
            for i, extra in zip(flagged, reasons(model, x[flagged], self.base), strict=True):
                why[i] = why[i] + extra
        keep = [c for c in (*TRANSACTION_SCHEMA, "sent_ms") if c in frame.columns]
        extra = [f for f in FEATURES if f not in keep]
        return frame.select(*keep, *extra).with_columns(
            decision=pl.Series(decision, dtype=pl.String),
            score=pl.Series(score),
            model_score=pl.Series(model_score),
            rule_score=pl.Series(rule_score),
            reasons=pl.Series(why, dtype=pl.List(pl.String)),
            model_version=pl.lit(f"{model.info.name}@v{model.info.version}"),
            decided_ms=pl.lit(time.time_ns() // 1_000_000),
        )


STATE_SCHEMA = {
    "ts": pl.List(pl.Int64()),
    "amount": pl.List(pl.Float64()),
    "lat": pl.List(pl.Float64()),
    "lon": pl.List(pl.Float64()),
    "device_id": pl.List(pl.String()),
}


def recent_state(batch: pl.DataFrame, state: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``update_state`` function: the card's last 24 hours, one row per card, as lists."""
    past = (
        state.select("customer_id", *PAST_COLUMNS).explode(list(PAST_COLUMNS))
        if state.height
        else None
    )
    if past is not None:
        past = past.filter(pl.col("ts").is_not_null())
    out = with_recent(batch, past)
    kept = keep_recent(batch, past).sort("ts")
    new_state = kept.group_by("customer_id", maintain_order=True).agg(list(PAST_COLUMNS))
    return out, new_state.with_columns(pl.col(c).cast(t) for c, t in STATE_SCHEMA.items())


class WebhookSink(Sink):
    """POSTs each STEP_UP/BLOCK notification as JSON to a URL (at-least-once)."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self._client: Any = None

    def write(self, batch: pl.DataFrame) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        for row in batch.select(NOTIFICATION_COLUMNS).to_dicts():
            try:
                self._client.post(
                    self.url,
                    content=json.dumps(row, default=str),
                    headers={"content-type": "application/json"},
                )
            except httpx.HTTPError as exc:  # the topic keeps the notification; log and go on
                log.warning("webhook %s failed: %s", self.url, exc)

    def flush(self) -> None:
        """Every POST is already done in :meth:`write`."""

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


NOTIFICATION_COLUMNS = [
    "tx_id",
    "customer_id",
    "ts",
    "amount",
    "merchant_id",
    "decision",
    "score",
    "reasons",
    "model_version",
]


def detection_pipeline(
    config: FraudConfig | None = None,
    *,
    scorer: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    max_wait: str = "20ms",
    checkpoint_every: str = "2s",
) -> Pipeline:
    """Declare pipeline ``fraud-detection`` for ``config``."""
    config = config or FraudConfig()
    p = Pipeline("fraud-detection", max_wait=max_wait, checkpoint_every=checkpoint_every)
    tx = p.source(
        config.transactions,
        schema={**TRANSACTION_SCHEMA, "sent_ms": int | None},
        timestamp="ts",
        partitioned_by="customer_id",
    )
    profiles = p.table(config.profiles, key_name="customer_id")
    decided = (
        tx.join_table(profiles, on="customer_id", prefix="p_")
        .key_by("customer_id")
        .update_state(recent_state, state_schema=STATE_SCHEMA)
        .map_batches(scorer or Scorer(config))
    )
    decided.to_topic(config.decisions, key="customer_id")
    alerts = decided.filter(pl.col("decision") != "APPROVE").select(*NOTIFICATION_COLUMNS)
    alerts.to_topic(config.notifications, key="customer_id")
    if config.webhook:
        alerts.to_sink(WebhookSink(config.webhook))
    return p


#: The decision records (the audit source reads them with these types).
DECISION_SCHEMA: dict[str, Any] = {
    **TRANSACTION_SCHEMA,
    "sent_ms": int | None,
    **{f: float | None for f in FEATURES if f not in TRANSACTION_SCHEMA},
    "decision": str,
    "score": float,
    "model_score": float,
    "rule_score": float,
    "reasons": pl.List(pl.String()),
    "model_version": str,
    "decided_ms": int,
}


def audit_pipeline(config: FraudConfig | None = None) -> Pipeline:
    """Pipeline ``fraud-audit``: every decision into the lake table (exactly once)."""
    from haeryu.stores.lake import DeltaSink

    config = config or FraudConfig()
    p = Pipeline("fraud-audit", checkpoint_every="5s")
    kwargs: dict[str, Any] = {} if config.lake is None else {"root": config.lake}
    p.source(config.decisions, schema=DECISION_SCHEMA, timestamp="ts").to_sink(
        DeltaSink(config.audit_table, **kwargs)
    )
    return p
