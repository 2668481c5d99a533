"""Consumer errors: transient ones are left to librdkafka, fatal ones end the consumer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError

from haeryu.stream.kafka.consumer import ConsumerError, split_by_topic


@dataclass
class FakeMessage:
    """What split_by_topic reads of a confluent-kafka Message."""

    _value: bytes | None = None
    _error: KafkaError | None = None
    _partition: int = 0
    _offset: int = 0
    _topic: str = "in"

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)

    def headers(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def error(self) -> KafkaError | None:
        return self._error


def test_a_broker_going_away_is_logged_and_the_records_beside_it_are_kept() -> None:
    down = KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")
    eof = KafkaError(KafkaError._PARTITION_EOF, "end")
    messages = [FakeMessage(b"a", _offset=0), FakeMessage(_error=down), FakeMessage(_error=eof)]
    messages.append(FakeMessage(b"b", _offset=1))
    [batch] = split_by_topic(messages)  # type: ignore[arg-type]
    assert batch.values == [b"a", b"b"] and batch.offsets == [0, 1]


def test_a_fatal_error_raises_so_the_worker_rejoins_with_a_new_consumer() -> None:
    fatal = KafkaError(KafkaError._FATAL, "fenced", fatal=True)
    with pytest.raises(ConsumerError, match="fenced"):
        split_by_topic([FakeMessage(b"a"), FakeMessage(_error=fatal)])  # type: ignore[list-item]
