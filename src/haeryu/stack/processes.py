"""The built-in processes of the stack (targets of :data:`haeryu.stack.registry.PROCESSES`).

Each takes a :class:`~haeryu.stack.child.Context` whose settings hold ``config`` (the
validated ``haeryu.toml`` as a dict), ``bootstrap`` and ``data_dir``, and returns once
``context.stop`` is set, after stopping cleanly (flushed, checkpointed).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any

from haeryu.config import HaeryuConfig
from haeryu.stack.child import Context

log = logging.getLogger(__name__)


def config_of(ctx: Context) -> HaeryuConfig:
    return HaeryuConfig.model_validate(ctx.settings["config"])


def broker_main(ctx: Context) -> None:
    """haeryu's broker on the port ``haeryu up`` chose (the same port after a restart)."""
    from haeryu.broker.config import BrokerConfig
    from haeryu.broker.server import Broker, run

    config = config_of(ctx)
    host, _, port = ctx.settings["bootstrap"].rpartition(":")
    broker_config = BrokerConfig.from_settings(
        {
            "host": host,
            "port": port,
            "log.dirs": str(Path(ctx.settings["data_dir"]) / "broker"),
            "num.partitions": str(config.kafka.partitions),
            # A restarted stack's groups rejoin at once instead of waiting 3 s.
            "group.initial.rebalance.delay.ms": "0",
        }
    )

    def ready(broker: Broker) -> None:
        ctx.ready(bootstrap=broker.bootstrap)

    run(broker_config, ready)


MACHINES = [
    (f"plant-{p}", f"line-{p}{ln}", f"m-{p}{ln}{m}") for p in "AB" for ln in "12" for m in "1234"
]


def sensor_simulator_main(ctx: Context) -> None:
    """Machine sensor readings at ``demo.rate`` per second (until the factory simulator lands)."""
    from haeryu.kafka.clients import Producer
    from haeryu.kafka.config import producer_config

    rate = config_of(ctx).demo.rate
    producer = Producer(producer_config(ctx.settings["bootstrap"]))
    rng = random.Random()
    tick = 0.1
    sent = 0
    started = time.monotonic()
    ctx.ready()
    while not ctx.stop.is_set():
        due = int((time.monotonic() - started) * rate)
        now_ms = int(time.time() * 1000)
        while sent < due:
            plant, line, machine = MACHINES[sent % len(MACHINES)]
            base = 60 + 5 * (sent % len(MACHINES)) / len(MACHINES)
            reading = {
                "plant": plant,
                "line": line,
                "machine_id": machine,
                "temperature": round(base + rng.gauss(0, 1.5), 2),
                "vibration": round(abs(rng.gauss(0.5, 0.2)), 3),
                "ts": now_ms,
            }
            try:
                producer.produce("sensor-readings", json.dumps(reading).encode(), key=machine)
            except BufferError:
                producer.poll(0.05)
                continue
            sent += 1
        producer.poll(0)
        ctx.stop.wait(tick)
    remaining = producer.flush(30)
    log.info("sensor simulator stopped after %d readings (%d unsent)", sent, remaining)


def lake_sensors_main(ctx: Context) -> None:
    """``sensor-readings`` into the lake's ``sensor_readings`` Delta table, exactly once."""
    from haeryu.stores.lake import DeltaSink
    from haeryu.stream.api.pipeline import Pipeline
    from haeryu.stream.kafka.runner import run

    config = config_of(ctx)
    pipeline = Pipeline("lake-sensors", checkpoint_every="2s")
    readings = pipeline.source(
        "sensor-readings",
        schema={
            "plant": str,
            "line": str,
            "machine_id": str,
            "temperature": float,
            "vibration": float,
            "ts": int,
        },
        timestamp="ts",
    )
    options: dict[str, str] = {}
    if config.lake.s3_endpoint:
        options = {"AWS_ENDPOINT_URL": config.lake.s3_endpoint, "AWS_ALLOW_HTTP": "true"}
    readings.to_sink(
        DeltaSink("sensor_readings", root=config.lake_root, storage_options=options or None)
    )
    ctx.ready()
    run(pipeline, bootstrap=ctx.settings["bootstrap"], stop=ctx.stop)


def connect_file(config: HaeryuConfig, bootstrap: str) -> Any:
    """The ``connect.config`` file, its Kafka replaced by the stack's and its positions
    kept in the data dir unless the file says where (raises its ConfigError)."""
    import dataclasses

    from haeryu.connectors.runtime.config import RuntimeSettings, load_config

    loaded = load_config(Path(config.connect.config))
    runtime = loaded.runtime
    if runtime.state_dir == RuntimeSettings().state_dir:
        runtime = runtime.model_copy(update={"state_dir": config.data_path / "connect"})
    kafka = loaded.kafka.model_copy(update={"bootstrap": bootstrap})
    return dataclasses.replace(loaded, kafka=kafka, runtime=runtime)


def connectors_main(ctx: Context) -> None:
    """The source connectors of ``connect.config``, until SIGTERM (each one supervised)."""
    import asyncio
    import signal

    from haeryu.connectors.runtime.service import ConnectRuntime

    runtime = ConnectRuntime(connect_file(config_of(ctx), ctx.settings["bootstrap"]))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, runtime.stop)
        ctx.ready()
        await runtime.run()

    asyncio.run(main())


def web_main(ctx: Context) -> None:
    """The dashboard and REST API (uvicorn), until stopped."""
    import uvicorn

    from haeryu.web.app import create_app
    from haeryu.web.settings import WebSettings

    settings = WebSettings.from_stack(ctx.settings)
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level="warning", lifespan="on"
        )
    )

    def announce() -> None:
        while not server.started and not ctx.stop.is_set():
            time.sleep(0.05)
        if server.started:
            ctx.ready(web_url=f"http://{settings.host}:{settings.port}")
        ctx.stop.wait()
        server.should_exit = True

    threading.Thread(target=announce, daemon=True).start()
    server.run()


LOG_LINES = [
    ("INFO", "payments", "결제 요청 처리 완료 주문 {n}"),
    ("INFO", "orders", "주문 {n} 배송 준비 시작"),
    ("WARN", "factory", "설비 m-A1{d} 온도 상승 경고 {t}도"),
    ("ERROR", "payments", "카드 승인 서버 응답 시간 초과 주문 {n}"),
    ("INFO", "auth", "사용자 로그인 성공 user-{d}"),
    ("WARN", "auth", "비밀번호 오류 반복 user-{d}"),
    ("ERROR", "database", "데이터베이스 연결 실패 재시도 중"),
    ("INFO", "factory", "Line A{d} shift started, throughput normal"),
]


def log_simulator_main(ctx: Context) -> None:
    """Application log lines in Korean and English, ``demo.rate / 10`` per second."""
    from haeryu.kafka.clients import Producer
    from haeryu.kafka.config import producer_config

    rate = max(config_of(ctx).demo.rate / 10, 1.0)
    producer = Producer(producer_config(ctx.settings["bootstrap"]))
    rng = random.Random()
    sent = 0
    started = time.monotonic()
    ctx.ready()
    while not ctx.stop.is_set():
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            level, service, template = rng.choice(LOG_LINES)
            line = {
                "ts": int(time.time() * 1000),
                "level": level,
                "service": service,
                "host": f"host-{rng.randint(1, 4)}",
                "message": template.format(
                    n=rng.randint(10_000, 99_999), d=rng.randint(1, 4), t=rng.randint(70, 95)
                ),
            }
            producer.produce("app-logs", json.dumps(line, ensure_ascii=False).encode(), key=service)
            sent += 1
        producer.poll(0)
        ctx.stop.wait(0.1)
    producer.flush(30)


LOG_MAPPING = {
    "properties": {
        "@timestamp": {"type": "date"},
        "level": {"type": "keyword"},
        "service": {"type": "keyword"},
        "host": {"type": "keyword"},
        "message": {"type": "text"},
    }
}


def search_logs_main(ctx: Context) -> None:
    """``app-logs`` into the search index ``app-logs`` (Korean analysis), exactly once."""
    from haeryu.stores.search.sink import SearchSink
    from haeryu.stream.api.pipeline import Pipeline
    from haeryu.stream.kafka.runner import run

    pipeline = Pipeline("search-logs", checkpoint_every="1s")
    logs = pipeline.source(
        "app-logs",
        schema={"ts": int, "level": str, "service": str, "host": str, "message": str},
        timestamp="ts",
    )
    root = Path(ctx.settings["data_dir"]) / "search"
    logs.select("level", "service", "host", "message").to_sink(
        SearchSink("app-logs", mapping=LOG_MAPPING, root=root)
    )
    ctx.ready()
    run(pipeline, bootstrap=ctx.settings["bootstrap"], stop=ctx.stop)
