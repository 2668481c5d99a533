"""Syslog server on real UDP and TCP sockets (and util-linux `logger`), read back from Kafka."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from haeryu.bench.servers import free_port
from haeryu.testing import EmbeddedBroker, embedded_broker
from support.connect import running_connectors
from support.kafka import read_all, wait_for

RFC5424 = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 " + (
    b'[exampleSDID@32473 iut="3" eventSource="Application"] An application event'
)
RFC3164 = b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with embedded_broker(tmp_path / "kafka") as broker:
        yield broker


@pytest.fixture
def server(kafka: EmbeddedBroker, tmp_path: Path) -> Iterator[tuple[int, int]]:
    udp, tcp = free_udp_port(), free_port()
    doc: dict[str, Any] = {
        "kafka": {"bootstrap": kafka.bootstrap},
        "runtime": {"state_dir": str(tmp_path / "state")},
        "connectors": {
            "logs": {
                "type": "syslog",
                "udp_port": udp,
                "tcp_port": tcp,
                "topic": "server-logs",
                "max_message_bytes": 256,
            }
        },
    }
    with running_connectors(doc):
        wait_for(lambda: _listening(tcp), what="syslog server listening")
        yield udp, tcp


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def count(kafka: EmbeddedBroker, topic: str) -> int:
    try:
        return sum(kafka.end_offsets(topic))
    except Exception:  # not created yet
        return 0


def test_udp_and_tcp_with_both_framings_become_records(
    kafka: EmbeddedBroker, server: tuple[int, int]
) -> None:
    udp, tcp = server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(RFC5424 + b"\n", ("127.0.0.1", udp))
    with socket.create_connection(("127.0.0.1", tcp)) as s:
        # octet counting, then LF framing, on one connection, split mid-frame
        stream = b"%d %s" % (len(RFC3164), RFC3164) + b"<13>1 - host2 app - - - plain line\n"
        s.sendall(stream[:17])
        s.sendall(stream[17:])
    wait_for(lambda: count(kafka, "server-logs") == 3, what="3 records")
    records = read_all(kafka.bootstrap, "server-logs")
    by_key = {m.key(): m for m in records}
    event = json.loads(by_key[b"mymachine.example.com"].value())
    assert event["app_name"] == "evntslog"
    assert event["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application"}
    }
    assert by_key[b"mymachine.example.com"].timestamp()[1] == 1065910455003
    headers = dict(by_key[b"mymachine.example.com"].headers())
    assert headers["haeryu.origin.transport"] == b"udp"
    su = json.loads(by_key[b"mymachine"].value())
    assert su["severity_name"] == "crit" and su["message"].startswith("'su root' failed")
    assert dict(by_key[b"mymachine"].headers())["haeryu.origin.transport"] == b"tcp"
    assert json.loads(by_key[b"host2"].value())["message"] == "plain line"


def test_bad_and_oversized_messages_go_to_dead_letters_with_the_reason(
    kafka: EmbeddedBroker, server: tuple[int, int]
) -> None:
    udp, tcp = server
    with socket.create_connection(("127.0.0.1", tcp)) as s:
        s.sendall(b"<999>not syslog\n" + b"<13>" + b"x" * 400 + b"\n" + RFC3164 + b"\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"<13>" + b"y" * 300, ("127.0.0.1", udp))
    wait_for(lambda: count(kafka, "logs.dead-letters") == 3, what="3 dead letters")
    wait_for(lambda: count(kafka, "server-logs") == 1, what="the good message after them")
    dead = read_all(kafka.bootstrap, "logs.dead-letters")
    reasons = sorted(dict(m.headers())["haeryu.error"].decode() for m in dead)
    assert reasons[0] == "datagram of 304 bytes exceeds the limit of 256"
    assert reasons[1] == "line longer than the limit of 256 bytes"
    assert reasons[2].startswith("not a syslog message")
    raw = {m.value()[:5] for m in dead}
    assert raw == {b"<999>", b"<13>x", b"<13>y"}


@pytest.mark.skipif(shutil.which("logger") is None, reason="util-linux logger not installed")
@pytest.mark.parametrize(
    "args",
    [["--tcp", "--rfc5424"], ["--tcp", "--octet-count", "--rfc5424"], ["--udp", "--rfc3164"]],
    ids=["tcp-lf", "tcp-octet", "udp-3164"],
)
def test_logger_from_util_linux(
    kafka: EmbeddedBroker, server: tuple[int, int], args: list[str]
) -> None:
    udp, tcp = server
    port = udp if "--udp" in args else tcp
    cmd = ["logger", "--server", "127.0.0.1", "--port", str(port), *args, "-t", "myapp"]
    subprocess.run([*cmd, "hello from logger"], check=True, timeout=10)
    wait_for(lambda: count(kafka, "server-logs") == 1, what="logger's message")
    (m,) = read_all(kafka.bootstrap, "server-logs")
    event = json.loads(m.value())
    assert event["app_name"] == "myapp"
    assert event["message"] == "hello from logger"
