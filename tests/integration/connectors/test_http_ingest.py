"""HTTP ingest with plain HTTP clients (httpx) against a real broker, read back by a Kafka
consumer: REST Proxy v2 and v3 (streaming too), NDJSON, bad records, auth, size limits."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from haeryu.connectors.runtime import ConnectRuntime
from support.connect import free_port, running_connectors
from support.kafka import read_all, wait_for

TOKEN = "s3cret"


@pytest.fixture
def ingest(broker: Any, tmp_path: Any) -> Iterator[tuple[httpx.Client, ConnectRuntime]]:
    port = free_port()
    config = {
        "kafka": {"bootstrap": broker.bootstrap},
        "runtime": {"state_dir": str(tmp_path / "state"), "metrics_port": free_port()},
        "connectors": {
            "web": {
                "type": "http",
                "port": port,
                "topics": ["events*", "bin"],
                "auth_token": TOKEN,
                "key_field": "user",
                "timestamp_field": "ts",
                "max_request_bytes": 200_000,
                "max_record_bytes": 10_000,
            }
        },
    }
    with (
        running_connectors(config) as runtime,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        ) as client,
    ):
        wait_for(lambda: _healthy(client), 20, "HTTP ingest listening")
        yield client, runtime


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def headers_of(message: Any) -> dict[str, bytes]:
    return dict(message.headers() or [])


def test_v2_json_records_answer_offsets_after_kafka_has_them(
    ingest: tuple[httpx.Client, ConnectRuntime], broker: Any
) -> None:
    client, runtime = ingest
    body: dict[str, list[dict[str, Any]]] = {
        "records": [
            {"key": "k1", "value": {"user": "a", "n": 1}},
            {"value": {"user": "b", "n": 2, "ts": 1_700_000_000_000}},
            {"value": [1, 2, 3], "partition": 0},
        ]
    }
    r = client.post(
        "/topics/events",
        content=json.dumps(body),
        headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
    )
    assert r.status_code == 200, r.text
    offsets = r.json()["offsets"]
    assert [(o["partition"], o["offset"], o["error_code"]) for o in offsets] == [
        (0, 0, None),
        (0, 1, None),
        (0, 2, None),
    ]
    # Answered only after the broker acknowledged: they are readable right now.
    got = read_all(broker.bootstrap, "events")
    assert [json.loads(m.value()) for m in got] == [r["value"] for r in body["records"]]
    assert [m.key() for m in got] == [b"k1", b"b", None]  # explicit key, else key_field
    assert got[1].timestamp()[1] == 1_700_000_000_000  # event time from "ts"
    assert headers_of(got[0])["haeryu.connector"] == b"web"
    assert headers_of(got[0])["haeryu.origin.http.path"] == b"/topics/events"
    assert runtime.per_connector["web"].records_out == 3
    metrics_port = runtime.config.runtime.metrics_port
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    assert 'haeryu_connector_records_out_total{connector="web"} 3.0' in text
    assert 'haeryu_connector_records_in_total{connector="web"} 3.0' in text


def test_v2_binary_records_round_trip_bytes(
    ingest: tuple[httpx.Client, ConnectRuntime], broker: Any
) -> None:
    client, _ = ingest
    values = [bytes(range(256)), b"\x00\xffraw"]
    body = {
        "records": [
            {"key": base64.b64encode(b"k").decode(), "value": base64.b64encode(v).decode()}
            for v in values
        ]
    }
    r = client.post(
        "/topics/bin", json=body, headers={"Content-Type": "application/vnd.kafka.binary.v2+json"}
    )
    assert r.status_code == 200, r.text
    assert [m.value() for m in read_all(broker.bootstrap, "bin")] == values


def test_bad_records_get_their_own_error_and_a_dead_letter_the_rest_is_written(
    ingest: tuple[httpx.Client, ConnectRuntime], broker: Any
) -> None:
    client, runtime = ingest
    lines = [
        b'{"user": "a", "n": 1}',
        b"{not json",
        b'{"user": "c", "ts": "yesterday"}',
        b'{"n": 4}',
    ]
    r = client.post(
        "/topics/events-nd",
        content=b"\n".join(lines) + b"\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["received"], answer["written"]) == (4, 2)
    assert [(e["index"], e["error_code"]) for e in answer["errors"]] == [(1, 42201), (2, 42201)]
    # The good lines are in the topic, byte for byte; the bad ones in the dead-letter topic
    # with the reason: nothing is lost.
    assert [m.value() for m in read_all(broker.bootstrap, "events-nd")] == [lines[0], lines[3]]
    dead = read_all(broker.bootstrap, "web.dead-letters")
    assert [m.value() for m in dead] == [lines[1], lines[2]]
    assert (
        b"ISO 8601" in headers_of(dead[1])["haeryu.error"]
        or b"yesterday" in headers_of(dead[1])["haeryu.error"]
    )
    assert runtime.per_connector["web"].errors == 2


def test_v3_single_record_and_streaming_mode(
    ingest: tuple[httpx.Client, ConnectRuntime], broker: Any
) -> None:
    client, _ = ingest
    one = {
        "key": {"type": "STRING", "data": "dev-1"},
        "value": {"type": "JSON", "data": {"t": 21.5}},
        "headers": [{"name": "trace", "value": base64.b64encode(b"abc").decode()}],
        "timestamp": "2026-12-01T05:00:00Z",
    }
    r = client.post("/v3/clusters/haeryu/topics/events3/records", json=one)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["error_code"], answer["topic_name"], answer["offset"]) == (200, "events3", 0)
    assert answer["timestamp"].startswith("2026-12-01T05:00:00")

    # Streaming: a chunked body of records one after another, one answer line each,
    # including the error of a bad one in the middle.
    def chunks() -> Iterator[bytes]:
        for i in range(5):
            yield json.dumps({"value": {"type": "JSON", "data": {"i": i}}}).encode()
        yield b'{"value": {"type": "BINARY", "data": "!!notbase64"}}'
        yield b' {"value": {"type": "STRING", "data": "last"}}'

    r = client.post("/v3/clusters/haeryu/topics/events3/records", content=chunks())
    assert r.status_code == 200
    answers = [json.loads(line) for line in r.text.splitlines()]
    assert [a["error_code"] for a in answers] == [200] * 5 + [400, 200]
    assert "base64" in answers[5]["message"]
    got = read_all(broker.bootstrap, "events3")
    assert got[0].key() == b"dev-1" and headers_of(got[0])["trace"] == b"abc"
    assert [m.value() for m in got[1:]] == [
        *(json.dumps({"i": i}, separators=(",", ":")).encode() for i in range(5)),
        b"last",
    ]
    r = client.post("/v3/clusters/other/topics/events3/records", json=one)
    assert r.status_code == 404


def test_refusals_write_nothing(ingest: tuple[httpx.Client, ConnectRuntime], broker: Any) -> None:
    client, _ = ingest
    nd = {"Content-Type": "application/x-ndjson"}
    assert (
        client.post(
            "/topics/events-r", content=b"{}\n", headers={**nd, "Authorization": "Bearer no"}
        ).status_code
        == 401
    )
    assert client.post("/topics/private", content=b"{}\n", headers=nd).status_code == 404
    assert client.post("/topics/bad%20name", content=b"{}\n", headers=nd).status_code == 422
    assert (
        client.post(
            "/topics/events-r", content=b"{}", headers={"Content-Type": "text/csv"}
        ).status_code
        == 415
    )
    big = b'{"x": 1}\n' * 30_000  # 270 kB > 200 kB limit
    r = client.post("/topics/events-r", content=big, headers=nd)
    assert r.status_code == 413 and r.json()["error_code"] == 41301

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(30):
            yield b'{"x": 1}\n' * 1000

    assert client.post("/topics/events-r", content=chunked(), headers=nd).status_code == 413
    r = client.post(
        "/topics/events-r",
        content=b'{"records": 5}',
        headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
    )
    assert r.status_code == 422
    assert client.post("/topics/events-r", content=b'{"ok": 1}\n', headers=nd).status_code == 200
    # Only the last, accepted request reached the topic.
    assert [m.value() for m in read_all(broker.bootstrap, "events-r")] == [b'{"ok": 1}']


def test_load_concurrent_ndjson_batches_arrive_exactly_once(
    ingest: tuple[httpx.Client, ConnectRuntime], broker: Any
) -> None:
    import concurrent.futures

    client, _ = ingest
    batches = 20
    per_batch = 1000

    def post(b: int) -> int:
        body = b"\n".join(
            json.dumps({"user": f"u{i % 7}", "b": b, "i": i}).encode() for i in range(per_batch)
        )
        r = client.post(
            "/topics/events-load", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        assert r.status_code == 200
        return int(r.json()["written"])

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(post, range(batches))) == batches * per_batch
    got = read_all(broker.bootstrap, "events-load")
    seen = sorted((v["b"], v["i"]) for v in (json.loads(m.value()) for m in got))
    assert seen == [(b, i) for b in range(batches) for i in range(per_batch)]


def test_records_kafka_refuses_get_their_own_error(
    ingest: tuple[httpx.Client, ConnectRuntime], broker: Any
) -> None:
    client, _ = ingest
    v2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}
    body = {"records": [{"value": 1}, {"value": 2, "partition": 99}, {"value": "x" * 20_000}]}
    r = client.post("/topics/events-p", json=body, headers=v2)
    assert r.status_code == 200
    entries = r.json()["offsets"]
    assert [e["error_code"] for e in entries] == [None, 50002, 42201]
    assert "Unknown partition" in entries[1]["error"]
    assert "over the limit" in entries[2]["error"]
    assert [m.value() for m in read_all(broker.bootstrap, "events-p")] == [b"1"]


def test_a_port_in_use_is_retried_until_it_is_free(broker: Any, tmp_path: Any) -> None:
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    config = {
        "kafka": {"bootstrap": broker.bootstrap},
        "runtime": {"state_dir": str(tmp_path / "state")},
        "connectors": {"web": {"type": "http", "port": port, "restart_backoff_max_s": 0.2}},
    }
    with running_connectors(config) as runtime:
        status = runtime.status["web"]
        wait_for(lambda: runtime.per_connector["web"].restarts >= 2, 20, "restarts")
        assert status.last_error is not None and "address in use" in status.last_error
        blocker.close()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_for(lambda: _healthy(client), 20, "HTTP ingest listening once the port is free")
            r = client.post(
                "/topics/late",
                content=b'{"a": 1}\n',
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert r.status_code == 200 and r.json()["written"] == 1
