"""Offset/time index files and LogConfig parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from haeryu.broker.log import LogConfig
from haeryu.broker.log.index import OffsetIndex, TimeIndex


def test_offset_index_lookup_and_file_round_trip(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "00000000000000000100.index", 100)
    assert index.lookup(150) == 0
    for rel, pos in [(5, 400), (9, 900), (20, 2_000)]:
        index.append(100 + rel, pos)
    assert [index.lookup(o) for o in (100, 104, 105, 108, 109, 119, 120, 10**6)] == [
        0, 0, 400, 400, 900, 900, 2_000, 2_000,
    ]  # fmt: skip
    assert [index.floor_position(p) for p in (0, 399, 400, 1_999, 5_000)] == [
        0, 0, 400, 900, 2_000,
    ]  # fmt: skip
    os.close(index.write())
    data = index.path.read_bytes()
    assert data[:8] == (5).to_bytes(4, "big") + (400).to_bytes(4, "big")  # big-endian, relative
    loaded = OffsetIndex.load(index.path, 100, log_size=3_000)
    assert loaded is not None and loaded.entries() == index.entries()
    assert OffsetIndex.load(index.path, 100, log_size=2_000) is None  # points past the log
    index.path.write_bytes(data[8:16] + data[:8])  # not ascending
    assert OffsetIndex.load(index.path, 100, log_size=3_000) is None
    assert OffsetIndex.load(tmp_path / "missing.index", 0, 0) is None


def test_time_index_lookup_and_file_round_trip(tmp_path: Path) -> None:
    index = TimeIndex(tmp_path / "00000000000000000010.timeindex", 10)
    assert index.lookup(5) == 10
    for ts, offset in [(100, 10), (100, 12), (90, 13), (200, 15), (300, 15)]:
        index.maybe_append(ts, offset)
    assert index.entries() == [(100, 10), (200, 15), (300, 15)]  # only rising timestamps
    assert [index.lookup(t) for t in (50, 100, 150, 250, 999)] == [10, 10, 10, 15, 15]
    os.close(index.write())
    assert len(index.path.read_bytes()) == 3 * TimeIndex.ENTRY_SIZE
    loaded = TimeIndex.load(index.path, 10)
    assert loaded is not None and loaded.entries() == index.entries()
    assert loaded.last_entry() == (300, 15)
    index.path.write_bytes(index.path.read_bytes()[:-1])
    assert TimeIndex.load(index.path, 10) is None


def test_config_from_topic_configs() -> None:
    config = LogConfig.from_topic_configs(
        {
            "retention.ms": "-1",
            "segment.bytes": "1048576",
            "cleanup.policy": "delete,compact",
            "message.timestamp.type": "LogAppendTime",
            "compression.type": "producer",  # known to Kafka, not to the log: ignored
            "retention.bytes": None,
        }
    )
    assert config.retention_ms == -1 and config.segment_bytes == 1 << 20
    assert config.cleanup_policy == "compact,delete" and config.compact and config.delete
    assert config.log_append_time
    assert config.retention_bytes == -1
    assert LogConfig.from_topic_configs({"segment.ms": "10"}, base=config).segment_bytes == 1 << 20
    assert LogConfig.from_topic_configs(config.to_topic_configs()) == config


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("retention.ms", "soon"),
        ("retention.ms", "-2"),
        ("segment.bytes", "1"),
        ("segment.bytes", str(1 << 31)),
        ("cleanup.policy", "archive"),
        ("message.timestamp.type", "Now"),
        ("max.message.bytes", "-5"),
    ],
)
def test_config_errors_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        LogConfig.from_topic_configs({name: value})
