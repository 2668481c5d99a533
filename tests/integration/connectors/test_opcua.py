"""OPC UA connector against an asyncua server started by the test, read back from Kafka."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from haeryu.testing import EmbeddedBroker, embedded_broker
from support.connect import running_connectors
from support.kafka import read_all, wait_for
from support.opcua_server import OpcUaServer

T0 = datetime(2026, 1, 1, 8, 0, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with embedded_broker(tmp_path / "kafka") as broker:
        yield broker


@pytest.fixture(scope="module")
def server() -> Iterator[OpcUaServer]:
    # One server for the module (starting one takes seconds); each test writes the
    # values it starts from, and the restart test leaves it running.
    srv = OpcUaServer().start()
    yield srv
    srv.stop()


def config(kafka: EmbeddedBroker, server: OpcUaServer, state: Path) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap": kafka.bootstrap},
        "runtime": {"state_dir": str(state)},
        "connectors": {
            "press": {
                "type": "opcua",
                "endpoint": server.endpoint,
                "topic": "machine-values",
                "nodes": ["ns=2;s=Temperature"],
                "browse_paths": ["0:Objects/2:Plant/2:Mode"],
                "publishing_interval_ms": 50,
                "reconnect_max_s": 1,
            }
        },
    }


def values(kafka: EmbeddedBroker) -> list[dict[str, Any]]:
    try:
        if sum(kafka.end_offsets("machine-values")) == 0:
            return []
    except Exception:  # not created yet
        return []
    return [json.loads(m.value()) for m in read_all(kafka.bootstrap, "machine-values")]


def test_data_changes_by_node_id_and_browse_path_with_quality_and_source_time(
    kafka: EmbeddedBroker, server: OpcUaServer, tmp_path: Path
) -> None:
    server.write("Temperature", 20.5, T0)
    server.write("Mode", "idle", T0)
    with running_connectors(config(kafka, server, tmp_path / "state")):
        # the subscription reports each node's current value first
        wait_for(lambda: len(values(kafka)) == 2, what="initial values")
        server.write("Temperature", 71.25, T0 + timedelta(seconds=1))
        server.write("Temperature", -1.0, T0 + timedelta(seconds=2), uncertain=True)
        server.write("Mode", "running", T0 + timedelta(seconds=3))
        wait_for(lambda: len(values(kafka)) == 5, what="3 changes")
    msgs = read_all(kafka.bootstrap, "machine-values")
    temps = [(json.loads(m.value()), m) for m in msgs if m.key() == b"ns=2;s=Temperature"]
    assert [(d["value"], d["status"], d["source_timestamp"]) for d, _ in temps] == [
        (20.5, "Good", T0_MS),
        (71.25, "Good", T0_MS + 1000),
        (-1.0, "UncertainLastUsableValue", T0_MS + 2000),
    ]
    assert [m.timestamp()[1] for _, m in temps] == [T0_MS, T0_MS + 1000, T0_MS + 2000]
    first, m = temps[0]
    assert first["name"] == "Temperature" and first["server_timestamp"] is not None
    assert dict(m.headers())["haeryu.origin.opcua.node"] == b"ns=2;s=Temperature"
    modes = [json.loads(m.value())["value"] for m in msgs if m.key() == b"ns=2;s=Mode"]
    assert modes == ["idle", "running"]


def test_server_restart_reconnects_and_resubscribes(
    kafka: EmbeddedBroker, server: OpcUaServer, tmp_path: Path
) -> None:
    server.write("Temperature", 1.0, T0)
    server.write("Mode", "idle", T0)
    with running_connectors(config(kafka, server, tmp_path / "state")) as runtime:
        wait_for(lambda: len(values(kafka)) == 2, what="initial values")
        server.stop()
        server.start()  # same port and node ids, a fresh address space
        server.write("Temperature", 2.0, T0 + timedelta(seconds=5))
        server.write("Mode", "idle", T0)  # unchanged since before the restart
        wait_for(
            lambda: any(v["value"] == 2.0 for v in values(kafka)), timeout=60, what="new value"
        )
        server.write("Temperature", 3.0, T0 + timedelta(seconds=6))
        wait_for(lambda: any(v["value"] == 3.0 for v in values(kafka)), what="next value")
        assert runtime.per_connector["press"].restarts == 0
    # A new run of the connector (same state directory) is told the current values again
    # by its new subscription, and writes none of them: they are in Kafka already.
    before = len(values(kafka))
    with running_connectors(config(kafka, server, tmp_path / "state")) as runtime:
        wait_for(lambda: runtime.per_connector["press"].records_in >= 2, what="re-reported values")
        server.write("Temperature", 4.0, T0 + timedelta(seconds=7))
        wait_for(lambda: len(values(kafka)) == before + 1, what="only the new value")
    got = [(v["node"], v["value"]) for v in values(kafka)]
    # The unchanged Mode, re-reported by the new subscription, is not written twice.
    assert sorted(got) == sorted(
        [
            ("ns=2;s=Temperature", 1.0),
            ("ns=2;s=Mode", "idle"),
            ("ns=2;s=Temperature", 2.0),
            ("ns=2;s=Temperature", 3.0),
            ("ns=2;s=Temperature", 4.0),
        ]
    )


def readings_config(kafka: EmbeddedBroker, server: OpcUaServer, state: Path) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap": kafka.bootstrap},
        "runtime": {"state_dir": str(state)},
        "connectors": {
            "press": {
                "type": "opcua",
                "endpoint": server.endpoint,
                "topic": "factory.readings",
                "publishing_interval_ms": 50,
                "machines": {
                    "press-0001": {
                        "fields": {"plant": "plant-1", "line": "line-1-1", "type": "press"},
                        "sensors": {
                            "temperature": "ns=2;s=Temperature",
                            "pressure": "0:Objects/2:Plant/2:Pressure",
                        },
                    }
                },
            }
        },
    }


def readings(kafka: EmbeddedBroker) -> list[Any]:
    try:
        if sum(kafka.end_offsets("factory.readings")) == 0:
            return []
    except Exception:  # not created yet
        return []
    return read_all(kafka.bootstrap, "factory.readings")


def test_readings_per_machine_carry_every_sensors_latest_value_across_a_restart(
    kafka: EmbeddedBroker, server: OpcUaServer, tmp_path: Path
) -> None:
    def last() -> dict[str, Any]:
        got = readings(kafka)
        return json.loads(got[-1].value()) if got else {}

    server.write("Temperature", 20.5, T0)
    server.write("Pressure", 3.5, T0)
    state = tmp_path / "state"
    with running_connectors(readings_config(kafka, server, state)):
        # the first values may come in one publish or two: the last reading has both
        wait_for(lambda: last().get("pressure") == 3.5 and last().get("temperature") == 20.5)
        server.write("Temperature", 71.25, T0 + timedelta(seconds=1))
        wait_for(lambda: last().get("temperature") == 71.25, what="the change")
        server.write("Pressure", 9.0, T0 + timedelta(seconds=2), uncertain=True)
        wait_for(lambda: last().get("ts") == T0_MS + 2000, what="the uncertain value")
    msgs = readings(kafka)
    assert {m.key() for m in msgs} == {b"press-0001"}
    docs = [json.loads(m.value()) for m in msgs]
    assert docs[-2:] == [
        {"machine": "press-0001", "plant": "plant-1", "line": "line-1-1", "type": "press",
         "ts": T0_MS + 1000, "temperature": 71.25, "pressure": 3.5},
        # a value whose status is not Good is a sensor that sent nothing
        {"machine": "press-0001", "plant": "plant-1", "line": "line-1-1", "type": "press",
         "ts": T0_MS + 2000, "temperature": 71.25, "pressure": None},
    ]  # fmt: skip
    assert [m.timestamp()[1] for m in msgs[-2:]] == [T0_MS + 1000, T0_MS + 2000]
    # Restarted on the same state: the re-reported current values write no reading, but
    # the next reading still carries the unchanged temperature learnt from them.
    before = len(msgs)
    with running_connectors(readings_config(kafka, server, state)) as runtime:
        wait_for(lambda: runtime.per_connector["press"].records_in >= 2, what="re-reported")
        server.write("Pressure", 4.0, T0 + timedelta(seconds=3))
        wait_for(lambda: len(readings(kafka)) == before + 1, what="one new reading")
    assert json.loads(readings(kafka)[-1].value())["temperature"] == 71.25
    assert len(readings(kafka)) == before + 1


@pytest.mark.parametrize(
    ("machines", "why"),
    [
        ({"m": {"sensors": {"ts": "ns=2;i=2"}}}, "machines.m.sensors.ts: the field 'ts'"),
        ({"m": {"sensors": {"a": "ns=2;i=2", "b": "ns=2;i=2"}}}, "is also machines.m.sensors.a"),
        ({"m": {"sensors": {"a": "Objects/Plant"}}}, "each step is NAMESPACE:Name"),
        ({"m": {"sensors": {}}}, "sensors"),
    ],
)
def test_readings_config_errors_name_the_sensor(machines: dict[str, Any], why: str) -> None:
    from pydantic import ValidationError

    from haeryu.connectors.opcua import OpcUaConfig

    with pytest.raises(ValidationError, match=why):
        OpcUaConfig(endpoint="opc.tcp://127.0.0.1:4840", topic="r", machines=machines)
