"""What the Fraud page shows: decisions per second by outcome, scores, flagged payments;
and the analyst's verdicts, produced to the feedback topic the next training reads.

Decisions are counted by the second the pipeline decided them (``decided_ms``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from typing import Any

from haeryu.kafka.clients import Producer
from haeryu.kafka.config import producer_config
from haeryu.web.tail import TopicTail

__all__ = ["OUTCOMES", "FraudFeed"]

OUTCOMES = ("APPROVE", "STEP_UP", "BLOCK")
DECISIONS, FEEDBACK = "fraud-decisions", "fraud-feedback"
LABELS = {"fraud": "fraud", "false_alarm": "legit"}


class FraudFeed:
    """Live state of the fraud detection for the dashboard (thread-safe)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._lock = threading.Lock()
        self.per_second: dict[int, Counter[str]] = {}
        self.scores: deque[float] = deque(maxlen=5_000)
        self.flagged: deque[dict[str, Any]] = deque(maxlen=200)
        self.labels: dict[str, str] = {}  # tx_id -> fraud | legit (latest wins)
        self._producer: Producer | None = None
        self._tail = TopicTail(bootstrap, {DECISIONS: 5_000, FEEDBACK: None}, self._on_record)

    def start(self) -> None:
        self._tail.start()

    def stop(self) -> None:
        self._tail.stop()
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None  # its connections close with it

    def _on_record(self, topic: str, r: dict[str, Any]) -> None:
        with self._lock:
            if topic == FEEDBACK:
                if r.get("tx_id") and r.get("label") in ("fraud", "legit"):
                    self.labels[str(r["tx_id"])] = str(r["label"])
                return
            second = int(r.get("decided_ms") or time.time() * 1000) // 1000
            self.per_second.setdefault(second, Counter())[str(r.get("decision"))] += 1
            if len(self.per_second) > 600:
                for old in sorted(self.per_second)[:-600]:
                    del self.per_second[old]
            self.scores.append(float(r.get("score") or 0.0))
            if r.get("decision") in ("STEP_UP", "BLOCK"):
                keep = ("tx_id", "customer_id", "ts", "amount", "merchant_id", "decision")
                self.flagged.appendleft(
                    {
                        **{k: r.get(k) for k in keep},
                        "score": round(float(r.get("score") or 0.0), 3),
                        "reasons": list(r.get("reasons") or []),
                        "decided_ms": r.get("decided_ms"),
                    }
                )

    # -- what pages ask ----------------------------------------------------------------

    def rates(self, second: int) -> dict[str, int]:
        """Decisions per outcome decided in ``second`` (epoch seconds)."""
        with self._lock:
            counts = self.per_second.get(second, Counter())
            return {o: counts.get(o, 0) for o in OUTCOMES}

    def history(self, last: int, seconds: int) -> list[tuple[int, dict[str, int]]]:
        """Per-outcome counts of the ``seconds`` seconds up to ``last``."""
        return [(s, self.rates(s)) for s in range(last - seconds + 1, last + 1)]

    def histogram(self, bins: int = 10) -> list[int]:
        """Scores of the recent decisions in ``bins`` equal bins over [0, 1]."""
        counts = [0] * bins
        with self._lock:
            for score in self.scores:
                counts[min(bins - 1, max(0, int(score * bins)))] += 1
        return counts

    def recent_flagged(self, n: int = 50) -> list[dict[str, Any]]:
        """The newest STEP_UP and BLOCK decisions with the analyst's label so far."""
        with self._lock:
            return [
                {**row, "label": self.labels.get(str(row["tx_id"]), "")}
                for row in list(self.flagged)[:n]
            ]

    def mark(self, tx_id: str, verdict: str, decision: str | None = None) -> dict[str, Any]:
        """Produce the analyst's verdict (``fraud`` or ``false_alarm``) to the feedback
        topic as ``{"tx_id", "label": "fraud"|"legit", ...}``; returns the record."""
        if verdict not in LABELS:
            raise ValueError(f"unknown verdict {verdict!r}: fraud or false_alarm")
        record = {
            "tx_id": tx_id,
            "label": LABELS[verdict],
            "decision": decision,
            "marked_ms": int(time.time() * 1000),
        }
        with self._lock:
            if self._producer is None:
                self._producer = Producer(producer_config(self.bootstrap))
            self._producer.produce(FEEDBACK, json.dumps(record).encode(), key=tx_id.encode())
            self._producer.flush(10)
            self.labels[tx_id] = record["label"]  # type: ignore[assignment]
        return record
