"""The broker's domain operations called directly: no sockets, no wire types."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from haeryu.broker.config import BrokerConfig
from haeryu.broker.configs import ConfigOp, ConfigSource, ResourceType
from haeryu.broker.errors import BrokerError, ErrorCode, TopicError
from haeryu.broker.protocol.records import decode_records, encode_batch
from haeryu.broker.state import BrokerState


def _batch(*values: bytes, pid: int = -1, epoch: int = -1, seq: int = -1) -> bytes:
    return encode_batch(
        [(b"k", v, [], 1_700_000_000_000) for v in values],
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[BrokerState]:
    s = BrokerState(BrokerConfig(port=0, data_dir=tmp_path, num_partitions=2, fsync="always"))
    s.open()
    yield s
    asyncio.run(s.close())


def test_append_assigns_offsets_and_reads_back(state: BrokerState) -> None:
    state.create_topic("t", 1)
    first = state.append("t", 0, _batch(b"a", b"b"))
    second = state.append("t", 0, _batch(b"c"))
    assert (first.error_code, first.base_offset, first.written) == (ErrorCode.none, 0, True)
    assert (second.base_offset, second.log_start_offset) == (2, 0)
    plog = state.partition_log("t", 0)
    assert plog.log_end_offset == 3
    values = [r.value for r in decode_records(plog.read(0, 1 << 20))]
    assert values == [b"a", b"b"]


def test_append_wakes_a_parked_fetch(state: BrokerState) -> None:
    state.create_topic("t", 1)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        parked = asyncio.ensure_future(state.waiters.wait([("t", 0)], timeout_s=30))
        await asyncio.sleep(0)  # let the fetch park
        state.append("t", 0, _batch(b"x"))
        await asyncio.wait_for(parked, 5)
        return loop.time() - started

    assert asyncio.run(scenario()) < 5


def test_retried_idempotent_batch_gets_its_original_offset_and_is_not_rewritten(
    state: BrokerState,
) -> None:
    state.create_topic("t", 1)
    pid = state.producers.allocate_id()
    batch = _batch(b"once", pid=pid, epoch=0, seq=0)
    first = state.append("t", 0, batch)
    retry = state.append("t", 0, batch)
    assert (retry.error_code, retry.base_offset, retry.written) == (
        ErrorCode.none,
        first.base_offset,
        False,
    )
    assert state.partition_log("t", 0).log_end_offset == 1
    gap = state.append("t", 0, _batch(b"gap", pid=pid, epoch=0, seq=5))
    assert gap.error_code == ErrorCode.out_of_order_sequence_number
    assert state.partition_log("t", 0).log_end_offset == 1


@pytest.mark.parametrize(
    ("topic", "partition", "records", "code"),
    [
        ("missing", 0, _batch(b"x"), ErrorCode.unknown_topic_or_partition),
        ("t", 7, _batch(b"x"), ErrorCode.unknown_topic_or_partition),
        ("t", 0, b"", ErrorCode.corrupt_message),
        ("t", 0, _batch(b"x")[:-3], ErrorCode.corrupt_message),
    ],
)
def test_refused_appends_write_nothing(
    state: BrokerState, topic: str, partition: int, records: bytes, code: ErrorCode
) -> None:
    state.create_topic("t", 1)
    result = state.append(topic, partition, records)
    assert (result.error_code, result.written, result.base_offset) == (code, False, -1)
    assert state.partition_log("t", 0).log_end_offset == 0


def test_produce_with_acks_all_returns_after_an_fsync_round(state: BrokerState) -> None:
    state.create_topic("t", 1)

    async def scenario() -> int:
        before = state.durability.rounds
        result = await state.produce("t", 0, _batch(b"durable"), acks=-1)
        assert result.written
        return state.durability.rounds - before

    assert asyncio.run(scenario()) >= 1


def test_create_topic_defaults_and_refusals(state: BrokerState) -> None:
    topic = state.create_topic("auto")
    assert len(topic.partitions) == 2  # the broker's num_partitions
    with pytest.raises(TopicError) as exc:
        state.create_topic("r3", 1, replication_factor=3)
    assert exc.value.error_code == ErrorCode.invalid_replication_factor
    with pytest.raises(TopicError) as exc:
        state.create_topic("auto", 1)
    assert exc.value.error_code == ErrorCode.topic_already_exists
    state.create_topic("dry", 4, validate_only=True)
    assert state.topics.get("dry") is None


def test_delete_topic_forgets_offsets_and_wakes_fetches(state: BrokerState) -> None:
    old = state.create_topic("t", 1)
    state.append("t", 0, _batch(b"x"))

    async def scenario() -> None:
        await state.groups.commit("g", -1, "", {("t", 0): (1, -1, None)})
        assert state.groups.fetch("g") != {}
        parked = asyncio.ensure_future(state.waiters.wait([("t", 0)], timeout_s=30))
        await asyncio.sleep(0)
        state.delete_topic("t")
        await asyncio.wait_for(parked, 5)

    asyncio.run(scenario())
    assert state.groups.fetch("g") == {}
    assert state.topics.partition("t", 0) is None
    again = state.create_topic("t", 1)
    assert again.topic_id != old.topic_id
    assert state.partition_log("t", 0).log_end_offset == 0
    with pytest.raises(TopicError) as exc:
        state.delete_topic("never")
    assert exc.value.error_code == ErrorCode.unknown_topic_or_partition


def test_create_partitions_only_grows(state: BrokerState) -> None:
    state.create_topic("t", 2)
    state.create_partitions("t", 5)
    assert len(state.topics.get("t").partitions) == 5  # type: ignore[union-attr]
    with pytest.raises(TopicError) as exc:
        state.create_partitions("t", 3)
    assert exc.value.error_code == ErrorCode.invalid_partitions


def test_delete_records_and_list_offsets(state: BrokerState) -> None:
    state.create_topic("t", 1)
    for v in (b"a", b"b", b"c", b"d"):
        state.append("t", 0, _batch(v))
    assert state.list_offset("t", 0, -2) == (0, -1)
    assert state.list_offset("t", 0, -1) == (4, -1)
    assert state.delete_records("t", 0, 2) == 2
    assert state.list_offset("t", 0, -2) == (2, -1)
    with pytest.raises(BrokerError) as exc:
        state.delete_records("t", 0, 99)
    assert exc.value.error_code == ErrorCode.offset_out_of_range
    assert state.delete_records("t", 0, -1) == 4
    with pytest.raises(BrokerError) as exc:
        state.list_offset("t", 9, -1)
    assert exc.value.error_code == ErrorCode.unknown_topic_or_partition


def test_topic_configs_describe_alter_and_incremental(state: BrokerState) -> None:
    state.create_topic("t", 1, {"retention.ms": "1000"})
    described = state.describe_configs(ResourceType.TOPIC, "t")
    assert (described["retention.ms"].value, described["retention.ms"].source) == (
        "1000",
        ConfigSource.TOPIC,
    )
    assert described["cleanup.policy"].source == ConfigSource.DEFAULT
    state.incremental_alter_configs(
        ResourceType.TOPIC, "t", [("cleanup.policy", ConfigOp.APPEND, "compact")]
    )
    assert state.topics.get("t").configs == {  # type: ignore[union-attr]
        "retention.ms": "1000",
        "cleanup.policy": "delete,compact",
    }
    # Legacy AlterConfigs replaces the whole set: retention.ms goes back to its default.
    state.alter_configs(ResourceType.TOPIC, "t", {"segment.bytes": "1048576"})
    assert state.topics.get("t").configs == {"segment.bytes": "1048576"}  # type: ignore[union-attr]
    with pytest.raises(BrokerError) as exc:
        state.alter_configs(ResourceType.TOPIC, "t", {"no.such.config": "1"})
    assert exc.value.error_code == ErrorCode.invalid_config
    assert state.topics.get("t").configs == {"segment.bytes": "1048576"}  # type: ignore[union-attr]


def test_records_without_a_key_are_refused_on_a_compacted_topic(state: BrokerState) -> None:
    state.create_topic("c", 1, {"cleanup.policy": "compact"})
    mixed = encode_batch([(b"k0", b"a", [], 1), (None, b"b", [], 1), (b"k2", b"c", [], 1)])
    refused = state.append("c", 0, mixed)
    assert refused.error_code == ErrorCode.invalid_record
    assert [i for i, _ in refused.record_errors] == [1]
    assert "without key" in (refused.record_errors[0][1] or "")
    assert (refused.written, state.partition_log("c", 0).log_end_offset) == (False, 0)
    # Keyed records are fine, and so are keyless ones on a delete-policy topic.
    assert state.append("c", 0, _batch(b"v")).written
    state.create_topic("d", 1)
    assert state.append("d", 0, mixed).written
