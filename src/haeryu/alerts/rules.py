"""Alert rules and alert events, kept as files in ``DATA/alerts/``.

``rules.json`` is written by the dashboard and the API and read by the alerts process
(it notices changes by the file's mtime). ``events.jsonl`` is appended by the alerts
process only; acknowledgements go to ``acks.json``, written by the web side only, so
no file has two writers.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AlertEvent", "AlertRule", "AlertStore"]

Op = Literal[">", "<"]
Aggregate = Literal["avg", "max", "min", "last"]
Severity = Literal["info", "warning", "critical"]


class AlertRule(BaseModel):
    """Fire when ``aggregate(field)`` over the last ``window_s`` seconds, per key, ``op threshold``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    name: str = Field(min_length=1, max_length=100)
    topic: str = Field(min_length=1)
    field: str = Field(min_length=1, description="A numeric field of the JSON records.")
    key_field: str | None = Field(default=None, description="Evaluate per value of this field.")
    aggregate: Aggregate = "avg"
    op: Op = ">"
    threshold: float
    window_s: float = Field(default=10.0, gt=0, le=86_400)
    severity: Severity = "warning"
    webhook: str | None = Field(default=None, description="POSTed the event as JSON.")
    enabled: bool = True

    def describe(self) -> str:
        return (
            f"{self.aggregate}({self.field}) over {self.window_s:g} s {self.op} {self.threshold:g}"
        )


class AlertEvent(BaseModel):
    """A rule fired, or resolved, for one key."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    rule_id: str
    rule_name: str
    severity: Severity
    key: str | None
    value: float
    threshold: float
    state: Literal["firing", "resolved"]
    at_ms: int = Field(default_factory=lambda: int(time.time() * 1000))


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    os.replace(tmp, path)


class AlertStore:
    """Rules, events and acknowledgements under ``root`` (``DATA/alerts``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rules_path = root / "rules.json"
        self.events_path = root / "events.jsonl"
        self.acks_path = root / "acks.json"

    # -- rules ----------------------------------------------------------------------

    def rules(self) -> list[AlertRule]:
        try:
            data = json.loads(self.rules_path.read_text())
        except (OSError, ValueError):
            return []
        return [AlertRule.model_validate(r) for r in data]

    def rules_mtime(self) -> float:
        try:
            return self.rules_path.stat().st_mtime
        except OSError:
            return 0.0

    def save_rule(self, rule: AlertRule) -> AlertRule:
        """Add the rule, or replace the one with its id."""
        rules = [r for r in self.rules() if r.id != rule.id]
        rules.append(rule)
        _write_json(self.rules_path, [r.model_dump() for r in rules])
        return rule

    def delete_rule(self, rule_id: str) -> bool:
        rules = self.rules()
        kept = [r for r in rules if r.id != rule_id]
        _write_json(self.rules_path, [r.model_dump() for r in kept])
        return len(kept) != len(rules)

    # -- events ---------------------------------------------------------------------

    def append_events(self, events: list[AlertEvent]) -> None:
        if not events:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with self.events_path.open("a") as f:
            for event in events:
                f.write(event.model_dump_json() + "\n")
            f.flush()
            os.fsync(f.fileno())

    def events(self, limit: int = 200) -> list[dict[str, object]]:
        """The latest events, newest first, each with ``acked``."""
        try:
            lines = self.events_path.read_text().splitlines()[-limit:]
        except OSError:
            return []
        acks = self.acks()
        out = []
        for line in reversed(lines):
            try:
                event = json.loads(line)
            except ValueError:  # a line cut by a crash mid-write
                continue
            event["acked"] = event["id"] in acks
            out.append(event)
        return out

    def acks(self) -> set[str]:
        try:
            return set(json.loads(self.acks_path.read_text()))
        except (OSError, ValueError):
            return set()

    def ack(self, event_id: str) -> bool:
        known = {e["id"] for e in self.events(10_000)}
        if event_id not in known:
            return False
        _write_json(self.acks_path, sorted(self.acks() | {event_id}))
        return True
