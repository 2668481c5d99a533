"""Alert rules: fire once per breach and key, resolve once, windows in event time."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from haeryu.alerts.evaluator import Evaluator
from haeryu.alerts.rules import AlertEvent, AlertRule, AlertStore


def rule(**changes: object) -> AlertRule:
    base = {
        "id": "r1",
        "name": "hot",
        "topic": "readings",
        "field": "temperature",
        "key_field": "machine",
        "threshold": 80.0,
        "window_s": 10.0,
    }
    return AlertRule.model_validate({**base, **changes})


def summary(events: list[AlertEvent]) -> list[tuple[str | None, str, float]]:
    return [(e.key, e.state, e.value) for e in events]


def test_a_breach_fires_once_per_key_and_resolves_once() -> None:
    ev = Evaluator([rule()])
    assert ev.feed("readings", [(0, {"machine": "a", "temperature": 70})]) == []
    # avg over 10 s: (70 + 100) / 2 = 85 > 80 for a; b stays cool.
    fired = ev.feed(
        "readings",
        [(1000, {"machine": "a", "temperature": 100}), (1000, {"machine": "b", "temperature": 20})],
    )
    assert summary(fired) == [("a", "firing", 85.0)]
    assert fired[0].severity == "warning" and fired[0].at_ms == 1000
    # Still hot: no second event.
    assert ev.feed("readings", [(2000, {"machine": "a", "temperature": 95})]) == []
    # 12 s later the old readings left the window: the average is back under.
    resolved = ev.feed("readings", [(13_000, {"machine": "a", "temperature": 60})])
    assert summary(resolved) == [("a", "resolved", 60.0)]


@pytest.mark.parametrize(
    ("aggregate", "op", "threshold", "fires"),
    [
        ("max", ">", 90, True),
        ("min", "<", 15, False),
        ("last", "<", 50, True),
        ("avg", ">", 60, False),
    ],
)
def test_aggregates_and_comparisons(aggregate: str, op: str, threshold: float, fires: bool) -> None:
    ev = Evaluator([rule(aggregate=aggregate, op=op, threshold=threshold, key_field=None)])
    values = [20, 100, 30]  # avg 50, max 100, min 20, last 30
    events = ev.feed("readings", [(i, {"temperature": v}) for i, v in enumerate(values)])
    assert bool(events) is fires


def test_records_without_a_number_in_the_field_are_skipped() -> None:
    ev = Evaluator([rule(key_field=None, threshold=0)])
    records = [(0, {"temperature": "hot"}), (1, {"temperature": True}), (2, {"other": 5})]
    assert ev.feed("readings", records) == []
    assert ev.feed("other-topic", [(3, {"temperature": 99})]) == []


def test_a_disabled_or_changed_rule_starts_over() -> None:
    ev = Evaluator([rule(key_field=None)])
    assert summary(ev.feed("readings", [(0, {"temperature": 99})])) == [(None, "firing", 99.0)]
    ev.set_rules([rule(key_field=None, enabled=False)])
    assert ev.topics == set()
    ev.set_rules([rule(key_field=None, threshold=50)])
    # A changed rule has a fresh window and fires again on its own terms.
    assert summary(ev.feed("readings", [(1, {"temperature": 60})])) == [(None, "firing", 60.0)]


def test_a_rule_is_validated() -> None:
    with pytest.raises(ValidationError, match="window_s"):
        rule(window_s=0)
    with pytest.raises(ValidationError, match="op"):
        rule(op="=")


def test_the_store_keeps_rules_events_and_acks(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts")
    store.save_rule(rule())
    store.save_rule(rule(threshold=90))  # same id: replaced
    assert [r.threshold for r in store.rules()] == [90]
    events = Evaluator(store.rules()).feed("readings", [(0, {"machine": "a", "temperature": 99})])
    store.append_events(events)
    # A line cut by a crash in the middle of a write is skipped, the rest is kept.
    with store.events_path.open("a") as f:
        f.write('{"id": "cut')
    listed = store.events()
    assert [(e["key"], e["acked"]) for e in listed] == [("a", False)]
    assert store.ack(str(listed[0]["id"]))
    assert not store.ack("unknown")
    assert store.events()[0]["acked"] is True
    assert store.delete_rule("r1") and store.rules() == []
