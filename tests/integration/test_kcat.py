"""kcat (librdkafka 2.0, older non-flexible API versions) against a real broker process.

kcat is a Debian package (``make system-deps`` installs it); without it this module is
skipped. Every kcat run has a timeout, and the group consumer, which never exits on its
own, is read until it has printed every expected line and then terminated.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time

import pytest

from support.kafka import create_topic
from support.raw_client import RawClient, fetch_all, high_watermark

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
pytestmark = pytest.mark.skipif(
    KCAT is None, reason="kcat is not installed (apt-get install kcat, or `make system-deps`)"
)

TIMEOUT = 30


def kcat(bootstrap: str, *args: str, stdin: str | None = None) -> str:
    """Run kcat to completion and return its stdout (fails on a non-zero exit)."""
    assert KCAT is not None
    proc = subprocess.run(
        [KCAT, "-b", bootstrap, "-X", "api.version.request=true", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def test_metadata_lists_broker_topics_and_partitions(broker) -> None:
    create_topic(broker.bootstrap, "kc-list", 3)
    create_topic(broker.bootstrap, "kc-other", 1)
    md = json.loads(kcat(broker.bootstrap, "-L", "-J"))
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(0, broker.bootstrap)]
    topics = {t["topic"]: t for t in md["topics"]}
    assert {"kc-list", "kc-other"} <= set(topics)
    parts = topics["kc-list"]["partitions"]
    assert sorted(p["partition"] for p in parts) == [0, 1, 2]
    assert all(p["leader"] == 0 and p["replicas"] == [{"id": 0}] for p in parts)
    text = kcat(broker.bootstrap, "-L", "-t", "kc-list")
    assert "1 brokers:" in text
    assert 'topic "kc-list" with 3 partitions:' in text


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_lines_and_consume_them_back_exactly(broker, codec: str) -> None:
    create_topic(broker.bootstrap, "kc", 1)
    lines = [f"line {i} · ünïcode · {'x' * (i % 50)}" for i in range(300)]
    kcat(broker.bootstrap, "-P", "-t", "kc", "-p", "0", "-z", codec, stdin="\n".join(lines) + "\n")
    with RawClient(broker.bootstrap) as c:
        assert high_watermark(c, "kc") == len(lines)
    out = kcat(broker.bootstrap, "-C", "-t", "kc", "-o", "beginning", "-e", "-f", "%o|%s\n")
    got = out.splitlines()
    assert got == [f"{i}|{line}" for i, line in enumerate(lines)]


def test_produce_with_keys_and_consume_them_back(broker) -> None:
    create_topic(broker.bootstrap, "kc-keys", 4)
    pairs = [(f"key-{i % 7}", f"value-{i}") for i in range(200)]
    stdin = "".join(f"{k}:{v}\n" for k, v in pairs)
    kcat(broker.bootstrap, "-P", "-t", "kc-keys", "-K:", stdin=stdin)
    out = kcat(broker.bootstrap, "-C", "-t", "kc-keys", "-o", "beginning", "-e", "-f", "%p|%k|%s\n")
    rows = [line.split("|") for line in out.splitlines()]
    assert sorted((k, v) for _, k, v in rows) == sorted(pairs)
    # Same key, same partition; and per key, the production order is kept.
    partition_of: dict[str, set[str]] = {}
    for p, k, _ in rows:
        partition_of.setdefault(k, set()).add(p)
    assert all(len(ps) == 1 for ps in partition_of.values()), partition_of
    for key in partition_of:
        assert [v for _, k, v in rows if k == key] == [v for k, v in pairs if k == key]
    # What kcat read is what the log holds.
    with RawClient(broker.bootstrap) as c:
        stored = sum(len(fetch_all(c, "kc-keys", p)) for p in range(4))
    assert stored == len(pairs)


def test_null_keys_and_empty_values(broker) -> None:
    create_topic(broker.bootstrap, "kc-null", 1)
    # -Z: an empty value is produced as NULL; "k:" has a key and a NULL value.
    kcat(broker.bootstrap, "-P", "-t", "kc-null", "-K:", "-Z", stdin="k:\n:v\nk2:v2\n")
    out = kcat(
        broker.bootstrap, "-C", "-t", "kc-null", "-o", "beginning", "-e", "-Z", "-f", "%k|%s\n"
    )
    assert out.splitlines() == ["k|NULL", "NULL|v", "k2|v2"]
    with RawClient(broker.bootstrap) as c:
        records = fetch_all(c, "kc-null")
    assert [(r.key, r.value) for r in records] == [(b"k", None), (None, b"v"), (b"k2", b"v2")]


def _read_lines(proc: subprocess.Popen[str], n: int, timeout: float) -> list[str]:
    """Read ``n`` lines from ``proc``'s stdout within ``timeout`` seconds."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        out.append(line)
    return out


def test_group_consumer_reads_every_partition(broker) -> None:
    assert KCAT is not None
    create_topic(broker.bootstrap, "kc-group", 3)
    values = [f"g{i}" for i in range(150)]
    for p in range(3):
        chunk = values[p::3]
        kcat(broker.bootstrap, "-P", "-t", "kc-group", "-p", str(p), stdin="\n".join(chunk) + "\n")
    proc = subprocess.Popen(
        [
            KCAT, "-b", broker.bootstrap, "-G", "kc-readers", "-o", "beginning",
            "-X", "auto.offset.reset=earliest", "-u", "-f", "%p|%s\n", "kc-group",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        got = _read_lines(proc, len(values), TIMEOUT)
    finally:
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert len(got) == len(values), f"read {len(got)}/{len(values)} lines; kcat said:\n{stderr}"
    rows = [line.split("|", 1) for line in got]
    assert sorted(v for _, v in rows) == sorted(values)
    for p in range(3):
        assert [v for q, v in rows if q == str(p)] == values[p::3], f"partition {p} order"
