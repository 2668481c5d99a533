"""Restores never degrade silently: a changelog or output tail not read to its end raises."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from haeryu.stream.errors import StateError
from haeryu.stream.kafka.state_reader import KafkaStateReader
from support.kafka import create_topic, produce


def test_a_changelog_not_read_to_its_end_raises_and_says_so(
    broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    create_topic(broker.bootstrap, "cl", 1)
    produce(broker.bootstrap, "cl", [{"i": i} for i in range(100)])
    reader = KafkaStateReader(broker.bootstrap, timeout=0.0)  # no time to read anything
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(StateError, match="to its end"):
            reader.read_to_end({("cl", 0): None})
        assert "gives the partitions up and they will be reassigned" in caplog.text
        with pytest.raises(StateError, match="output tails"):
            reader.scan_ids({("cl", 0): 0}, {"p|in|0|"}, set())
    finally:
        reader.close()
    # With time to read, the same partition is read whole.
    reader = KafkaStateReader(broker.bootstrap, timeout=30.0)
    try:
        assert len(reader.read_to_end({("cl", 0): None})[("cl", 0)]) == 100
    finally:
        reader.close()
