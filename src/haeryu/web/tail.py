"""Follow topics in a thread of the web process: the use-case pages read what it keeps."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from haeryu.kafka.clients import Consumer, TopicPartition
from haeryu.kafka.config import consumer_config

log = logging.getLogger(__name__)

__all__ = ["TopicTail"]


class TopicTail:
    """Reads ``topics`` (each from ``backlog[topic]`` records before its end, ``None``:
    from the beginning) and hands each JSON object to ``on_record(topic, record)``.

    A topic that does not exist yet is looked for again every 2 s (the use case's
    processes create theirs as they start). Records that are not JSON objects are
    skipped: the pages show what they can read.
    """

    def __init__(
        self,
        bootstrap: str,
        backlog: Mapping[str, int | None],
        on_record: Callable[[str, dict[str, Any]], None],
    ) -> None:
        self.bootstrap = bootstrap
        self.backlog = dict(backlog)
        self.on_record = on_record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="topic-tail", daemon=True)

    def start(self) -> TopicTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _assign(self, consumer: Any, waiting: set[str]) -> list[TopicPartition]:
        found: list[TopicPartition] = []
        metadata = consumer.list_topics(timeout=5).topics
        for topic in sorted(waiting):
            meta = metadata.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                continue
            waiting.discard(topic)
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)
                back = self.backlog[topic]
                start = low if back is None else max(low, high - back)
                found.append(TopicPartition(topic, p, start))
        return found

    def _run(self) -> None:
        consumer = Consumer(consumer_config(self.bootstrap, None, **{"fetch.wait.max.ms": 100}))
        waiting = set(self.backlog)
        assigned: list[TopicPartition] = []
        try:
            while not self._stop.is_set():
                if waiting:
                    try:
                        new = self._assign(consumer, waiting)
                    except Exception as exc:  # the broker restarting: try again
                        log.warning("topic tail: %s", exc)
                        new = []
                    if new:
                        assigned += new
                        consumer.assign(assigned)
                if not assigned:
                    self._stop.wait(2.0)
                    continue
                for message in consumer.consume(5_000, 0.2 if not waiting else 0.05):
                    if message.error() is not None:
                        continue
                    try:
                        record = json.loads(message.value())
                    except (TypeError, ValueError):
                        continue
                    if isinstance(record, dict):
                        self.on_record(message.topic(), record)
                if waiting and self._stop.wait(0.5):
                    break
        finally:
            consumer.close()
