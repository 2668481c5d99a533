"""The connector runtime without Kafka: config errors, positions, records' key and time,
dead letters and the supervisor's restarts, with a fake sender."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from haeryu.connectors.runtime import (
    ConfigError,
    ConnectorContext,
    PositionStore,
    RecordShape,
    SourceRecord,
    Supervised,
    Supervisor,
    known_types,
    parse_config,
)
from support.fake_sender import FakeSender, context


@pytest.mark.parametrize(
    ("doc", "key", "expected"),
    [
        ({"kafka": {}}, "connectors", "at least one [connectors.NAME]"),
        (
            {"connectors": {"a": {"type": "nope"}}},
            "connectors.a.type",
            "unknown connector type 'nope'",
        ),
        ({"connectors": {"a": {"port": 1}}}, "connectors.a.type", "missing"),
        ({"connectors": {"a": {"type": "files", "topic": "t"}}}, "connectors.a.paths", "missing"),
        (
            {"connectors": {"a": {"type": "files", "paths": ["x"], "topic": "a/b"}}},
            "connectors.a.topic",
            "not a Kafka topic name",
        ),
        (
            {"connectors": {"a": {"type": "files", "paths": ["x"], "topic": "t", "colour": 1}}},
            "connectors.a.colour",
            "unknown setting; expected one of",
        ),
        (
            {
                "connectors": {
                    "a": {"type": "files", "paths": ["x"], "topic": "t", "multiline_start": "("}
                }
            },
            "connectors.a.multiline_start",
            "not a regular expression",
        ),
        ({"connectors": {"a": {"type": "http", "port": "x"}}}, "connectors.a.port", "integer"),
        (
            {"runtime": {"metrics_port": -1}, "connectors": {}},
            "runtime.metrics_port",
            "greater than",
        ),
        ({"sources": {}}, "sources", "unknown section"),
    ],
)
def test_config_errors_name_file_key_and_what_is_expected(
    doc: dict[str, Any], key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, "connect.toml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"connect.toml: {key}: ")
    assert expected in caught.value.expected


def test_a_valid_config_names_its_dead_letter_topic() -> None:
    cfg = parse_config(
        {
            "connectors": {
                "web": {"type": "http"},
                "logs": {"type": "files", "paths": ["*.log"], "topic": "l"},
            }
        }
    )
    assert [s.name for s in cfg.connectors] == ["web", "logs"]
    assert cfg.connectors[0].dead_letter_topic == "web.dead-letters"
    assert {"files", "http"} <= set(known_types())


def test_positions_are_replaced_whole_and_survive_a_torn_temporary(tmp_path: Path) -> None:
    store = PositionStore(tmp_path / "state" / "c.json")
    assert store.load() is None
    store.save({"files": [{"offset": 1}]})
    # A crash during the next save leaves a torn temporary file: the last save stands.
    (tmp_path / "state" / "c.json.tmp").write_bytes(b'{"files": [{"off')
    assert store.load() == {"files": [{"offset": 1}]}
    store.save({"files": [{"offset": 2}]})
    assert json.loads((tmp_path / "state" / "c.json").read_text()) == {"files": [{"offset": 2}]}
    assert not os.path.exists(tmp_path / "state" / "c.json.tmp")


def test_record_shape_picks_key_and_event_time() -> None:
    shape = RecordShape(key_field="device.id", timestamp_field="ts", timestamp_format="s")
    assert shape.key_of({"device": {"id": 7}}) == b"7"
    assert shape.key_of({"device": "flat"}) is None
    assert shape.timestamp_of({"ts": 1_700_000_000.5}) == 1_700_000_000_500
    assert shape.timestamp_of({"ts": "2026-12-01T00:00:00Z"}) == 1_796_083_200_000
    with pytest.raises(ValueError, match="number of s"):
        shape.timestamp_of({"ts": [1]})
    assert RecordShape().timestamp_of({"ts": 1}) is None  # not configured: ingestion time


def test_dead_letters_carry_raw_bytes_reason_and_origin() -> None:
    sender = FakeSender()
    ctx = context(sender)
    asyncio.run(ctx.dead_letter(b"\xffraw", "not JSON", {"file": "/var/log/a"}))
    [dead] = sender.sent
    assert (dead.topic, dead.value) == ("c1.dead-letters", b"\xffraw")
    assert dict(dead.headers) == {
        "haeryu.connector": b"c1",
        "haeryu.error": b"not JSON",
        "haeryu.origin.file": b"/var/log/a",
    }
    assert ctx.metrics.errors == 1


def test_supervisor_restarts_a_failing_connector_with_back_off_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    class Flaky:
        async def run(self, ctx: ConnectorContext) -> None:
            runs.append(len(runs))
            if len(runs) < 3:
                raise ConnectionError(f"source down (run {len(runs)})")
            await ctx.send([SourceRecord("t", b"ok")])
            ctx.stopping.set()

    async def main() -> Supervisor:
        stopping = asyncio.Event()
        sup = Supervisor(
            [Supervised(context(FakeSender(), stopping), Flaky, backoff_max_s=0.05)], stopping
        )
        await asyncio.wait_for(sup.run(), 10)
        return sup

    sup = asyncio.run(main())
    assert runs == [0, 1, 2]
    status = sup.status["c1"]
    assert status.state == "stopped" and status.last_error == "ConnectionError: source down (run 2)"
    assert (
        "connector c1 failed (ConnectionError: source down (run 1)); restarting in 0.05 s"
        in caplog.text
    )
    assert sup.connectors[0].context.metrics.restarts == 2
