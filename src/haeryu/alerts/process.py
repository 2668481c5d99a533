"""The alerts process of the stack: rules from ``DATA/alerts/rules.json`` over live topics.

It reads the topics the enabled rules name (from their end: alerts are about now),
evaluates, appends events to ``events.jsonl``, produces them to the ``alerts`` topic and
POSTs each to the rule's webhook. Rule edits take effect within a second.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from haeryu.alerts.evaluator import Evaluator
from haeryu.alerts.rules import AlertEvent, AlertStore
from haeryu.kafka.clients import Consumer, Producer
from haeryu.kafka.config import consumer_config, producer_config

log = logging.getLogger(__name__)

ALERTS_TOPIC = "alerts"


def _post(url: str, event: AlertEvent) -> None:
    try:
        httpx.post(url, json=event.model_dump(), timeout=2.0).raise_for_status()
    except httpx.HTTPError as exc:  # the event is kept in events.jsonl and the topic anyway
        log.warning("webhook %s failed for alert %s: %s", url, event.id, exc)


def run_alerts(store: AlertStore, bootstrap: str, stop: Any) -> None:
    """Evaluate until ``stop`` (a threading.Event) is set."""
    evaluator = Evaluator(store.rules())
    seen_mtime = store.rules_mtime()
    consumer = Consumer(
        consumer_config(
            bootstrap,
            "haeryu-alerts",
            **{"auto.offset.reset": "latest", "enable.auto.commit": True},
        )
    )
    producer = Producer(producer_config(bootstrap))
    subscribed: set[str] = set()
    try:
        while not stop.is_set():
            mtime = store.rules_mtime()
            if mtime != seen_mtime:
                seen_mtime = mtime
                evaluator.set_rules(store.rules())
                log.info("rules changed: %d enabled", len(evaluator.rules))
            if evaluator.topics != subscribed:
                subscribed = evaluator.topics
                if subscribed:
                    consumer.subscribe(sorted(subscribed))
                else:
                    consumer.unsubscribe()
            if not subscribed:
                stop.wait(0.5)
                continue
            batch: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
            for message in consumer.consume(5000, 0.5):
                if message.error() is not None:
                    continue
                try:
                    record = json.loads(message.value() or b"")
                except ValueError:
                    continue  # not JSON: no numeric field to watch
                if isinstance(record, dict):
                    batch[message.topic() or ""].append((message.timestamp()[1], record))
            events: list[AlertEvent] = []
            for topic, records in batch.items():
                events += evaluator.feed(topic, records)
            if events:
                store.append_events(events)
                webhooks = {r.id: r.webhook for r in evaluator.rules}
                for event in events:
                    producer.produce(
                        ALERTS_TOPIC, event.model_dump_json().encode(), key=event.rule_id
                    )
                    url = webhooks.get(event.rule_id)
                    if url:
                        _post(url, event)
                producer.poll(0)
    finally:
        consumer.close()
        producer.flush(10)


def alerts_main(ctx: Any) -> None:
    """Stack entry point (:data:`haeryu.stack.registry.PROCESSES`)."""
    store = AlertStore(Path(ctx.settings["data_dir"]) / "alerts")
    ctx.ready()
    started = time.monotonic()
    run_alerts(store, ctx.settings["bootstrap"], ctx.stop)
    log.info("alerts stopped after %.0f s", time.monotonic() - started)
