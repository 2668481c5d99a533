"""What the Factory page shows: readings per machine, alerts, incidents, acknowledgements.

Kept in the web process from the factory topics (``factory.readings`` from its recent
end, ``factory.alerts`` likewise, ``factory.incidents`` from the beginning). An operator
acknowledges or closes an incident; those actions are kept in ``DATA/factory/actions.json``
so they survive a restart of the stack.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

from haeryu.web.tail import TopicTail

__all__ = ["SENSORS", "FactoryFeed"]

SENSORS = ("temperature", "vibration", "pressure", "current", "rpm")
READINGS, ALERTS, INCIDENTS = "factory.readings", "factory.alerts", "factory.incidents"
#: readings kept per machine (two minutes at the demo's 20 Hz)
KEEP = 2_400


class FactoryFeed:
    """Live state of the factory for the dashboard (thread-safe)."""

    def __init__(self, bootstrap: str, data_dir: Path) -> None:
        self.path = data_dir / "factory" / "actions.json"
        self._lock = threading.Lock()
        self.machines: dict[str, tuple[str, str, str]] = {}  # machine -> plant, line, type
        self.readings: dict[str, deque[dict[str, Any]]] = defaultdict(lambda: deque(maxlen=KEEP))
        self.alerts: dict[str, deque[dict[str, Any]]] = defaultdict(lambda: deque(maxlen=500))
        self.incidents: dict[str, dict[str, Any]] = {}
        self.actions: dict[str, dict[str, int]] = self._load()
        self.received = 0
        self._tail = TopicTail(
            bootstrap, {READINGS: KEEP * 2, ALERTS: 2_000, INCIDENTS: None}, self._on_record
        )

    def start(self) -> None:
        self._tail.start()

    def stop(self) -> None:
        self._tail.stop()

    def _load(self) -> dict[str, dict[str, int]]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {}

    def _on_record(self, topic: str, r: dict[str, Any]) -> None:
        with self._lock:
            self.received += 1
            if topic == READINGS:
                machine = str(r.get("machine"))
                self.machines[machine] = (
                    str(r.get("plant")),
                    str(r.get("line")),
                    str(r.get("type")),
                )
                self.readings[machine].append(r)
            elif topic == ALERTS:
                self.alerts[str(r.get("machine"))].append(r)
            elif topic == INCIDENTS and r.get("incident_id"):
                self.incidents[str(r["incident_id"])] = r

    # -- what pages ask ----------------------------------------------------------------

    def tree(self) -> dict[str, dict[str, list[str]]]:
        """plant -> line -> machines."""
        out: dict[str, dict[str, list[str]]] = {}
        with self._lock:
            for machine, (plant, line, _) in sorted(self.machines.items()):
                out.setdefault(plant, {}).setdefault(line, []).append(machine)
        return out

    def open_incidents(self, prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Open incidents (not closed by the detectors nor by an operator), newest first,
        of the machines under ``prefix`` (plant, line, machine)."""
        rows = []
        with self._lock:
            for ident, inc in self.incidents.items():
                action = self.actions.get(ident, {})
                if inc.get("status") == "closed" or "closed_ms" in action:
                    continue
                machine = str(inc.get("machine"))
                where = (*self.machines.get(machine, ("", "", ""))[:2], machine)
                if where[: len(prefix)] != prefix:
                    continue
                rows.append({**inc, "acked": "acked_ms" in action})
        return sorted(rows, key=lambda r: int(r.get("ts") or 0), reverse=True)

    def open_counts(self) -> dict[str, int]:
        """Open incidents per plant, line and machine name."""
        counts: dict[str, int] = defaultdict(int)
        for inc in self.open_incidents():
            machine = str(inc.get("machine"))
            plant, line, _ = self.machines.get(machine, ("", "", ""))
            for name in (plant, line, machine):
                counts[name] += 1
        return counts

    def since(
        self, machine: str, after_ts: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Readings and alerts of ``machine`` with event time after ``after_ts``."""
        with self._lock:
            readings = [r for r in self.readings.get(machine, ()) if int(r["ts"]) > after_ts]
            alerts = [a for a in self.alerts.get(machine, ()) if int(a["ts"]) > after_ts]
        return readings, alerts

    def act(self, incident_id: str, action: str) -> None:
        """``ack`` or ``close`` an incident (kept in ``DATA/factory/actions.json``)."""
        if action not in ("ack", "close"):
            raise ValueError(f"unknown action {action!r}: ack or close")
        with self._lock:
            if incident_id not in self.incidents:
                raise KeyError(f"no incident {incident_id!r}")
            entry = self.actions.setdefault(incident_id, {})
            entry["acked_ms" if action == "ack" else "closed_ms"] = int(time.time() * 1000)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.actions))
            tmp.replace(self.path)
