"""The REST API and /metrics against a real broker and a real lake table."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from deltalake import write_deltalake

from haeryu.kafka.admin import Admin
from haeryu.kafka.clients import Consumer, Producer, TopicPartition
from haeryu.kafka.config import consumer_config
from haeryu.web.app import create_app
from haeryu.web.settings import WebSettings
from support.broker_process import BrokerProcess

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(broker: BrokerProcess, tmp_path: Path) -> Iterator[TestClient]:
    settings = WebSettings(
        host="127.0.0.1",
        port=0,
        token=TOKEN,
        data_dir=tmp_path,
        bootstrap=broker.bootstrap,
        lake_root=str(tmp_path / "lake"),
    )
    with TestClient(create_app(settings, with_ui=False)) as c:
        yield c


def produce(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, f'{{"i": {i}}}'.encode(), key=f"k{i}".encode(), partition=i % 2)
    assert producer.flush(10) == 0


def test_topics_records_groups_and_metrics(client: TestClient, broker: BrokerProcess) -> None:
    Admin(broker.bootstrap).ensure({"events": (2, {})})
    produce(broker.bootstrap, "events", 30)
    # A group that read 10 records of partition 0 and committed: lag 15 + 5.
    consumer = Consumer(consumer_config(broker.bootstrap, "readers"))
    consumer.commit(offsets=[TopicPartition("events", 0, 10)], asynchronous=False)
    consumer.close()

    topics = {t["name"]: t for t in client.get("/api/topics", headers=AUTH).json()}
    assert topics["events"]["records"] == 30
    assert topics["events"]["end_offsets"] == {"0": 15, "1": 15}

    records = client.get("/api/topics/events/records?limit=4&partition=1", headers=AUTH).json()
    assert [r["offset"] for r in records] == [14, 13, 12, 11]  # newest first
    assert records[0]["value"] == '{"i": 29}' and records[0]["key"] == "k29"
    assert client.get("/api/topics/nope/records", headers=AUTH).status_code == 404

    groups = {g["group"]: g for g in client.get("/api/groups", headers=AUTH).json()}
    assert groups["readers"]["lag"] == 5
    assert groups["readers"]["partitions"] == [
        {"topic": "events", "partition": 0, "committed": 10, "lag": 5}
    ]

    # /metrics shows the same, once the sampler has looked (every second).
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        if 'haeryu_consumer_group_lag{group="readers"} 5.0' in text:
            break
        time.sleep(0.2)
    assert 'haeryu_topic_records_total{topic="events"} 30.0' in text
    assert 'haeryu_consumer_group_lag{group="readers"} 5.0' in text


def test_sql_over_the_lake_with_errors_that_say_what_is_wrong(
    client: TestClient, tmp_path: Path
) -> None:
    frame = pl.DataFrame({"machine": ["a", "b", "a"], "temperature": [60.0, 70.0, 62.0]})
    write_deltalake(str(tmp_path / "lake" / "readings"), frame.to_arrow())
    response = client.post(
        "/api/sql",
        headers=AUTH,
        json={"sql": "SELECT machine, avg(temperature) AS t FROM readings GROUP BY ALL ORDER BY 1"},
    )
    assert response.status_code == 200
    result = response.json()
    assert result["columns"] == ["machine", "t"]
    assert result["types"] == ["String", "Float64"]
    assert result["rows"] == [{"machine": "a", "t": 61.0}, {"machine": "b", "t": 70.0}]
    assert client.get("/api/sql/tables", headers=AUTH).json() == {
        "readings": ["machine", "temperature"]
    }

    bad = client.post("/api/sql", headers=AUTH, json={"sql": "SELECT * FROM reading"})
    assert bad.status_code == 400
    assert "unknown table 'reading' (did you mean 'readings'?)" in bad.json()["detail"]


def test_saved_queries_survive_a_restart_and_bad_names_are_refused(
    client: TestClient, broker: BrokerProcess, tmp_path: Path
) -> None:
    saved = client.post("/api/sql/saved", headers=AUTH, json={"name": "all", "sql": "SELECT 1"})
    assert saved.json() == {"all": "SELECT 1"}
    bad = client.post("/api/sql/saved", headers=AUTH, json={"name": "a/b", "sql": "SELECT 2"})
    assert bad.status_code == 400
    settings = WebSettings("127.0.0.1", 0, TOKEN, tmp_path, broker.bootstrap, str(tmp_path))
    with TestClient(create_app(settings, with_ui=False)) as again:
        assert again.get("/api/sql/saved", headers=AUTH).json() == {"all": "SELECT 1"}
        assert again.delete("/api/sql/saved/all", headers=AUTH).json() == {}
        assert again.delete("/api/sql/saved/all", headers=AUTH).status_code == 404


def test_search_with_an_elasticsearch_body_and_korean_analysis(
    client: TestClient, tmp_path: Path
) -> None:
    from haeryu.stores.search.store import SearchStore

    writer = SearchStore(tmp_path / "search")
    writer.create_index("logs", {"mappings": {"properties": {"message": {"type": "text"}}}})
    writer.index_documents(
        "logs",
        [("1", {"message": "카드 승인 서버 응답 시간 초과"}), ("2", {"message": "로그인 성공"})],
    )
    writer.refresh()
    assert client.get("/api/search/indices", headers=AUTH).json() == ["logs"]
    body = {"query": {"query_string": {"query": "승인"}}, "highlight": {"fields": {"message": {}}}}
    result = client.post("/api/search/logs", headers=AUTH, json=body).json()
    assert [h["_id"] for h in result["hits"]["hits"]] == ["1"]
    assert result["hits"]["hits"][0]["highlight"]["message"] == [
        "카드 <em>승인</em> 서버 응답 시간 초과"
    ]
    missing = client.post("/api/search/nope", headers=AUTH, json={})
    assert missing.status_code == 404
    writer.close()


def test_pipelines_lists_the_stack_pipelines_with_their_topics(client: TestClient) -> None:
    pipelines = {p["name"]: p for p in client.get("/api/pipelines", headers=AUTH).json()}
    assert pipelines["lake-sensors"]["reads"] == ["sensor-readings"]
    assert pipelines["lake-sensors"]["stores"] == ["lake"]
    assert pipelines["lake-sensors"]["state"] == "not running"  # no `haeryu up` here
