"""The Factory and Fraud pages' feeds against a real broker: what they keep from the
topics, and what an operator's action writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from haeryu.kafka.clients import Producer
from haeryu.kafka.config import producer_config
from haeryu.usecases.fraud.feedback import read_feedback
from haeryu.web.factory_feed import FactoryFeed
from haeryu.web.fraud_feed import FraudFeed
from support.broker_process import BrokerProcess

pytestmark = pytest.mark.timeout(60)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer(producer_config(bootstrap))
    for value in values:
        producer.produce(topic, value, key=b"k")
    assert producer.flush(10) == 0


def _until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _reading(machine: str, line: str, ts: int) -> bytes:
    record = {"machine": machine, "plant": "plant-1", "line": line, "type": "pump", "ts": ts}
    return json.dumps({**record, "temperature": 40.0}).encode()


def _incident(machine: str, status: str, ts: int) -> bytes:
    return json.dumps(
        {
            "incident_id": f"{machine}/spike/temperature/1",
            "status": status,
            "machine": machine,
            "sensor": "temperature",
            "kind": "spike",
            "opened_ts": 1,
            "ts": ts,
            "reason_en": "temperature jumped",
            "reason_ko": "온도 급변",
        }
    ).encode()


def test_factory_feed_drills_down_and_keeps_acknowledgements(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    _produce(
        broker.bootstrap,
        "factory.readings",
        [_reading("pump-0001", "line-1-1", 1), b"not json", _reading("pump-0002", "line-1-2", 2)],
    )
    _produce(
        broker.bootstrap,
        "factory.incidents",
        [_incident("pump-0001", "opened", 5), _incident("pump-0002", "opened", 6)],
    )
    _produce(broker.bootstrap, "factory.incidents", [_incident("pump-0002", "closed", 9)])
    feed = FactoryFeed(broker.bootstrap, tmp_path)
    feed.start()
    try:
        _until(lambda: feed.received >= 5, "the records")  # the bad one is skipped
        assert feed.tree() == {"plant-1": {"line-1-1": ["pump-0001"], "line-1-2": ["pump-0002"]}}
        # pump-0002's incident closed: only pump-0001's is open, under its plant and line.
        [open_one] = feed.open_incidents(("plant-1", "line-1-1"))
        assert open_one["machine"] == "pump-0001" and not open_one["acked"]
        assert feed.open_incidents(("plant-1", "line-1-2")) == []
        assert feed.open_counts() == {"plant-1": 1, "line-1-1": 1, "pump-0001": 1}
        ident = open_one["incident_id"]
        feed.act(ident, "ack")
        assert feed.open_incidents()[0]["acked"]
        with pytest.raises(ValueError, match="unknown action"):
            feed.act(ident, "explode")
        with pytest.raises(KeyError):
            feed.act("no/such/incident", "ack")
        feed.act(ident, "close")
        assert feed.open_incidents() == []
    finally:
        feed.stop()
    # A new web process reads the same actions back.
    again = FactoryFeed(broker.bootstrap, tmp_path)
    assert set(again.actions[ident]) == {"acked_ms", "closed_ms"}


def test_fraud_feed_counts_decisions_and_marks_go_to_the_feedback_topic(
    broker: BrokerProcess,
) -> None:
    second = 1_800_000_000
    decisions = [
        {"tx_id": f"t{i}", "decision": d, "score": s, "decided_ms": second * 1000 + i}
        for i, (d, s) in enumerate(
            [("APPROVE", 0.05), ("APPROVE", 0.12), ("STEP_UP", 0.45), ("BLOCK", 0.95)]
        )
    ]
    decisions[3]["reasons"] = ["card testing: 6 small payments in 1 hour"]
    _produce(broker.bootstrap, "fraud-decisions", [json.dumps(d).encode() for d in decisions])
    feed = FraudFeed(broker.bootstrap)
    feed.start()
    try:
        _until(lambda: len(feed.scores) == 4, "the decisions")
        assert feed.rates(second) == {"APPROVE": 2, "STEP_UP": 1, "BLOCK": 1}
        assert feed.histogram(10) == [1, 1, 0, 0, 1, 0, 0, 0, 0, 1]
        flagged = feed.recent_flagged()
        assert [r["tx_id"] for r in flagged] == ["t3", "t2"]  # newest first, no APPROVE
        assert flagged[0]["reasons"] == ["card testing: 6 small payments in 1 hour"]
        with pytest.raises(ValueError, match="unknown verdict"):
            feed.mark("t3", "maybe")
        feed.mark("t3", "fraud", "BLOCK")
        feed.mark("t2", "false_alarm", "STEP_UP")
        assert [r["label"] for r in feed.recent_flagged()] == ["fraud", "legit"]
    finally:
        feed.stop()
    # What the next training reads: one record per mark, the bad verdict wrote nothing.
    feedback = read_feedback(broker.bootstrap, "fraud-feedback")
    assert feedback.rows() == [("t3", "fraud"), ("t2", "legit")]
