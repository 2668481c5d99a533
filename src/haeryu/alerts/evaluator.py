"""When a rule fires and resolves: windows per (rule, key), no I/O (tested with lists)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from haeryu.alerts.rules import AlertEvent, AlertRule

__all__ = ["Evaluator"]


def _aggregate(values: Iterable[float], how: str) -> float:
    items = list(values)
    if how == "avg":
        return sum(items) / len(items)
    if how == "max":
        return max(items)
    if how == "min":
        return min(items)
    return items[-1]


class Evaluator:
    """Feed records; get an event when a (rule, key) starts or stops breaching.

    A breach fires once and stays quiet until the aggregate is back on the right side
    (then one ``resolved`` event): no flood while a machine stays hot.
    """

    def __init__(self, rules: Iterable[AlertRule] = ()) -> None:
        self.rules: list[AlertRule] = []
        self.windows: dict[tuple[str, str | None], deque[tuple[int, float]]] = {}
        self.firing: set[tuple[str, str | None]] = set()
        self.set_rules(rules)

    def set_rules(self, rules: Iterable[AlertRule]) -> None:
        """New rules; windows of rules that are gone or changed start over."""
        old = {r.id: r for r in self.rules}
        self.rules = [r for r in rules if r.enabled]
        keep = {r.id for r in self.rules if old.get(r.id) == r}
        self.windows = {k: v for k, v in self.windows.items() if k[0] in keep}
        self.firing = {k for k in self.firing if k[0] in keep}

    @property
    def topics(self) -> set[str]:
        return {r.topic for r in self.rules}

    def feed(
        self, topic: str, records: Iterable[tuple[int, Mapping[str, Any]]]
    ) -> list[AlertEvent]:
        """``records``: (timestamp ms, decoded JSON object) of ``topic``, in order."""
        rules = [r for r in self.rules if r.topic == topic]
        if not rules:
            return []
        touched: set[tuple[str, str | None]] = set()
        newest = 0
        for ts, record in records:
            newest = max(newest, ts)
            for rule in rules:
                value = record.get(rule.field)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue  # not numeric here: the rule does not apply to this record
                key = None if rule.key_field is None else str(record.get(rule.key_field))
                slot = (rule.id, key)
                self.windows.setdefault(slot, deque()).append((ts, float(value)))
                touched.add(slot)
        events = []
        by_id = {r.id: r for r in rules}
        for slot in sorted(touched, key=str):
            rule = by_id[slot[0]]
            window = self.windows[slot]
            while window and window[0][0] < newest - rule.window_s * 1000:
                window.popleft()
            if not window:
                continue
            value = _aggregate((v for _, v in window), rule.aggregate)
            breach = value > rule.threshold if rule.op == ">" else value < rule.threshold
            if breach != (slot in self.firing):
                (self.firing.add if breach else self.firing.discard)(slot)
                events.append(
                    AlertEvent(
                        rule_id=rule.id,
                        rule_name=rule.name,
                        severity=rule.severity,
                        key=slot[1],
                        value=round(value, 6),
                        threshold=rule.threshold,
                        state="firing" if breach else "resolved",
                        at_ms=newest,
                    )
                )
        return events
