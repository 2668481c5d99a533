"""The files connector against a real broker: tailing, rotation by rename and by
copytruncate, truncation, multi-line entries, dead letters, and kill -9 mid-file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.connect import running_connectors
from support.kafka import read_all, wait_for

FAST = {
    "poll_interval_s": 0.05,
    "glob_interval_s": 0.05,
    "rotated_close_after_s": 0.3,
    "multiline_flush_s": 0.3,
}


def config(broker: Any, tmp_path: Path, **connector: Any) -> dict[str, Any]:
    return {
        "kafka": {"bootstrap": broker.bootstrap},
        "runtime": {"state_dir": str(tmp_path / "state")},
        "connectors": {"logs": {"type": "files", **FAST, **connector}},
    }


def values_soon(broker: Any, topic: str, n: int, timeout: float = 20) -> list[bytes]:
    """The values of ``topic`` once it holds at least ``n`` records."""
    box: list[list[bytes]] = []

    def enough() -> bool:
        box[:] = [[m.value() for m in read_all(broker.bootstrap, topic)]]
        return len(box[0]) >= n

    wait_for(enough, timeout, f"{n} records in {topic}")
    return box[0]


def append(path: Path, *lines: str) -> None:
    with path.open("a") as f:
        f.writelines(line + "\n" for line in lines)


def test_tail_follows_rename_rotation_and_copytruncate(broker: Any, tmp_path: Path) -> None:
    logs = tmp_path / "logs"  # the broker writes its own *.log into tmp_path
    logs.mkdir()
    log = logs / "app.log"
    append(log, "a1", "a2")
    with running_connectors(config(broker, tmp_path, paths=[str(logs / "*.log")], topic="logs")):
        assert values_soon(broker, "logs", 2) == [b"a1", b"a2"]
        # Rotation by rename: the writer still appends to the old file for a moment,
        # then a new file takes the name.  Both are read to the end, nothing twice.
        log.rename(logs / "app.log.1")
        append(logs / "app.log.1", "a3")
        append(log, "b1")
        got = values_soon(broker, "logs", 4)
        assert sorted(got) == [b"a1", b"a2", b"a3", b"b1"]
        # copytruncate: the content is copied away (not matched by the glob) and the file
        # truncated in place; what is written after is read from the file's start.
        (logs / "app.log.2").write_bytes(log.read_bytes())
        os.truncate(log, 0)
        append(log, "c1")
        got = values_soon(broker, "logs", 5)
        assert sorted(got) == [b"a1", b"a2", b"a3", b"b1", b"c1"]
        # The rotated file is closed once read and quiet; its position goes away.
        state = tmp_path / "state" / "logs.position.json"
        wait_for(
            lambda: len(json.loads(state.read_text())["files"]) == 1, 10, "rotated file closed"
        )
    assert len(read_all(broker.bootstrap, "logs")) == 5


def test_json_lines_bad_lines_go_to_dead_letters_with_reason(broker: Any, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    append(log, '{"dev": "d1", "ts": 1700000000000}', "{broken", '{"dev": "d2"}')
    cfg = config(
        broker,
        tmp_path,
        paths=[str(log)],
        topic="events",
        format="json",
        key_field="dev",
        timestamp_field="ts",
    )
    with running_connectors(cfg) as runtime:
        wait_for(lambda: len(read_all(broker.bootstrap, "events")) == 2, 20, "good lines")
        dead = wait_for(lambda: read_all(broker.bootstrap, "logs.dead-letters"), 20, "dead letter")
        metrics = runtime.per_connector["logs"]
        wait_for(lambda: metrics.lag == 0, 10, "lag 0 once the file is read")
        assert (metrics.records_in, metrics.records_out, metrics.errors) == (3, 2, 1)
    good = read_all(broker.bootstrap, "events")
    assert [m.key() for m in good] == [b"d1", b"d2"]
    assert good[0].timestamp()[1] == 1_700_000_000_000
    assert dict(good[0].headers())["haeryu.origin.file"] == str(log).encode()
    assert [m.value() for m in dead] == [b"{broken"]
    assert dict(dead[0].headers())["haeryu.error"].startswith(b"not JSON")


def test_multiline_stack_traces_become_one_record_each(broker: Any, tmp_path: Path) -> None:
    log = tmp_path / "java.log"
    append(
        log,
        "2026-12-01 05:00:00 ERROR failed",
        "java.lang.IllegalStateException: boom",
        "    at a.B.c(B.java:10)",
        "2026-12-01 05:00:01 INFO recovered",
    )
    cfg = config(
        broker, tmp_path, paths=[str(log)], topic="java", multiline_start=r"^\d{4}-\d\d-\d\d "
    )
    with running_connectors(cfg):
        got = values_soon(broker, "java", 2)  # the last entry is sent after the quiet period
    assert got == [
        b"2026-12-01 05:00:00 ERROR failed\njava.lang.IllegalStateException: boom\n    at a.B.c(B.java:10)",
        b"2026-12-01 05:00:01 INFO recovered",
    ]


def test_kill_9_mid_file_then_restart_loses_nothing(broker: Any, tmp_path: Path) -> None:
    """Lines before the position saved at the kill are in Kafka exactly once; lines after
    it at least once and at most twice (the batches in flight when it died)."""
    n = 60_000
    log = tmp_path / "big.log"
    log.write_bytes(b"".join(b"line %06d padding padding padding\n" % i for i in range(n)))
    line_len = len(b"line 000000 padding padding padding\n")
    toml = tmp_path / "connect.toml"
    toml.write_text(
        f"""
[kafka]
bootstrap = "{broker.bootstrap}"
producer = {{ "linger.ms" = 20 }}
[runtime]
state_dir = "{tmp_path / "state"}"
[connectors.big]
type = "files"
paths = ["{log}"]
topic = "big"
batch_entries = 500
read_bytes = 8192
poll_interval_s = 0.05
"""
    )
    state = tmp_path / "state" / "big.position.json"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "haeryu", "connect", str(toml), "--no-status"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def saved_offset() -> int:
        try:
            return int(json.loads(state.read_text())["files"][0]["offset"])
        except (FileNotFoundError, IndexError, KeyError, json.JSONDecodeError):
            return 0

    proc = start()
    try:
        wait_for(lambda: saved_offset() > 10 * line_len, 60, "some lines saved")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    saved = saved_offset()
    assert 0 < saved < n * line_len, "killed mid-file"
    assert saved % line_len == 0, "positions fall on line ends"
    proc = start()
    try:
        wait_for(lambda: saved_offset() == n * line_len, 120, "the whole file saved")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    counts: dict[int, int] = {}
    for m in read_all(broker.bootstrap, "big"):
        i = int(m.value().split()[1])
        counts[i] = counts.get(i, 0) + 1
    before = saved // line_len
    assert set(counts) == set(range(n)), "every line in Kafka"
    assert all(counts[i] == 1 for i in range(before)), "before the saved position: exactly once"
    repeated = [i for i in range(before, n) if counts[i] > 1]
    assert all(counts[i] <= 2 for i in range(before, n))
    assert len(repeated) <= 2 * 500, "at most the batches in flight at the kill are repeated"
