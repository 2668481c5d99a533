"""Sarama (Go) commits offsets with its default, old OffsetCommit version (v1).

Sarama's offset manager sends OffsetCommit v1 and OffsetFetch v1 unless told otherwise,
and its default protocol version is the oldest it knows, which is how many deployed Go
consumers run. The program is built offline from Debian's packages
(``golang-go`` and ``golang-github-shopify-sarama-dev`` or ``golang-github-ibm-sarama-dev``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from haeryu.broker.embedded import EmbeddedBroker, embedded_broker
from support.kafka import produce_all

GOPATH = Path("/usr/share/gocode")
SOURCE = Path(__file__).parent / "sarama" / "commit.go.txt"
IMPORTS = ("github.com/Shopify/sarama", "github.com/IBM/sarama")


def _sarama_import() -> str | None:
    return next((i for i in IMPORTS if (GOPATH / "src" / i).is_dir()), None)


@pytest.fixture(scope="module")
def sarama_commit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go, package = shutil.which("go"), _sarama_import()
    if go is None or package is None:
        pytest.skip(
            "Go or Sarama is not installed (apt-get install golang-go "
            "golang-github-shopify-sarama-dev, or `make system-deps`)"
        )
    work = tmp_path_factory.mktemp("sarama")
    main = work / "main.go"
    main.write_text(SOURCE.read_text().replace(IMPORTS[0], package))
    env = {
        **os.environ,
        "GOPATH": str(GOPATH),
        "GO111MODULE": "off",
        "GOFLAGS": "-mod=vendor",
        "GOCACHE": os.environ.get("GOCACHE", str(Path.home() / ".cache" / "go-build")),
    }
    built = subprocess.run(
        [go, "build", "-o", str(work / "sarama-commit"), str(main)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    return work / "sarama-commit"


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with embedded_broker() as b:
        b.create_topic("go-topic", 1)
        produce_all(b.bootstrap, "go-topic", [b"a", b"b", b"c", b"d", b"e"])
        yield b


def _run(binary: Path, broker: EmbeddedBroker, offset: int) -> list[str]:
    done = subprocess.run(
        [str(binary), broker.bootstrap, "go-topic", "go-group", str(offset)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("\n")


def test_sarama_commits_offsets_with_its_default_version(
    sarama_commit: Path, broker: EmbeddedBroker
) -> None:
    out = _run(sarama_commit, broker, 3)
    assert "committed 3" in out
    assert broker.committed("go-group") == {("go-topic", 0): 3}
    # Another client (librdkafka) sees the commit; Sarama reads it back on restart.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "go-group"})
    try:
        (tp,) = c.committed([TopicPartition("go-topic", 0)], timeout=20)
    finally:
        c.close()
    assert tp.offset == 3
    again = _run(sarama_commit, broker, 5)
    assert "before 3" in again and "committed 5" in again
    assert broker.committed("go-group") == {("go-topic", 0): 5}
