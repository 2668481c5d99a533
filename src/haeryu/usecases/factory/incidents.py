"""Alerts deduplicated into incidents: opened, updated while they last, closed on recovery.

An incident is one (key, kind, sensor) in trouble.  Its first alert opens it; later
alerts update it (one ``updated`` event per ``update_every_ms`` at most); when no alert
came for ``close_after_ms`` of the key's event time, it closes.  The work per batch is
one Polars ``group_by`` of the alerts and a step per incident, never one per alert.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

INCIDENT_SCHEMA = pl.Schema(
    {
        "incident_id": pl.String,
        "status": pl.String,
        "key": pl.String,
        "kind": pl.String,
        "sensor": pl.String,
        "opened_ts": pl.Int64,
        "ts": pl.Int64,
        "alerts": pl.Int64,
        "max_score": pl.Float64,
        "severity": pl.String,
        "reason_en": pl.String,
        "reason_ko": pl.String,
    }
)
"""Incident events; ``ts`` is the event time of the event (last alert, or close time)."""


@dataclass
class Incident:
    """An open incident."""

    incident_id: str
    opened_ts: int
    last_ts: int
    alerts: int
    max_score: float
    emitted_ts: int
    reason_en: str
    reason_ko: str


class IncidentTracker:
    """Turns alerts into incident events, keeping the open incidents per key."""

    def __init__(self, close_after_ms: int = 5_000, update_every_ms: int = 5_000) -> None:
        self.close_after_ms = close_after_ms
        self.update_every_ms = update_every_ms
        self.open: dict[tuple[str, str, str], Incident] = {}

    def process(self, alerts: pl.DataFrame, now: dict[str, int]) -> pl.DataFrame:
        """Incident events for a batch of alerts; ``now`` is each key's latest event time."""
        rows: list[tuple[object, ...]] = []
        grouped = (
            alerts.group_by("key", "kind", "sensor", maintain_order=True)
            .agg(
                pl.col("ts").min().alias("first"),
                pl.col("ts").max().alias("last"),
                pl.len().alias("n"),
                pl.col("score").max().alias("score"),
                pl.col("reason_en").last(),
                pl.col("reason_ko").last(),
            )
            .iter_rows()
        )
        for key, kind, sensor, first, last, n, score, en, ko in grouped:
            ident = (key, kind, sensor)
            inc = self.open.get(ident)
            if inc is None:
                inc = Incident(
                    f"{key}/{kind}/{sensor}/{first}", first, last, n, score, first, en, ko
                )
                self.open[ident] = inc
                rows.append(_event(inc, "opened", ident, first))
            else:
                inc.last_ts = max(inc.last_ts, last)
                inc.alerts += n
                inc.max_score = max(inc.max_score, score)
                inc.reason_en, inc.reason_ko = en, ko
            if inc.last_ts - inc.emitted_ts >= self.update_every_ms:
                inc.emitted_ts = inc.last_ts
                rows.append(_event(inc, "updated", ident, inc.last_ts))
        for ident, inc in list(self.open.items()):
            key_now = now.get(ident[0])
            if key_now is not None and key_now - inc.last_ts >= self.close_after_ms:
                del self.open[ident]
                rows.append(_event(inc, "closed", ident, key_now))
        return pl.DataFrame(rows, schema=INCIDENT_SCHEMA, orient="row")


def _event(inc: Incident, status: str, ident: tuple[str, str, str], ts: int) -> tuple[object, ...]:
    severity = "critical" if inc.max_score >= 2.0 else "warning"
    key, kind, sensor = ident
    return (
        inc.incident_id,
        status,
        key,
        kind,
        sensor,
        inc.opened_ts,
        ts,
        inc.alerts,
        inc.max_score,
        severity,
        inc.reason_en,
        inc.reason_ko,
    )
