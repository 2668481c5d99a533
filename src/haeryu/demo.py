"""``haeryu demo``: start the broker and push messages through it, with live progress.

Until the whole stack exists, the demo shows the ingestion layer: a broker in its own
process, a confluent-kafka producer writing sensor readings, and a consumer group
reading them back.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from haeryu.broker.process import broker_process


def run_demo(port: int, messages: int, console: Console) -> None:
    from haeryu.kafka.clients import Consumer, Producer

    data_dir = Path(os.environ.get("HAERYU_DEMO_DIR") or tempfile.mkdtemp(prefix="haeryu-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]haeryu demo[/] -- data in {data_dir}")
    with broker_process(data_dir, port, "--partitions", "3") as bootstrap:
        console.print(f"broker up at [bold]{bootstrap}[/]")
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "demo",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe(["sensor-readings"])
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            sent = progress.add_task("produce", total=messages)
            got = progress.add_task("consume", total=messages)
            t0 = time.perf_counter()
            for i in range(messages):
                reading = {"machine_id": f"m{i % 16}", "temperature": 60 + i % 40, "seq": i}
                while True:
                    try:
                        producer.produce(
                            "sensor-readings",
                            json.dumps(reading).encode(),
                            key=reading["machine_id"],
                        )
                        break
                    except BufferError:
                        producer.poll(0.05)
                if i % 1000 == 0:
                    producer.poll(0)
                    progress.update(sent, completed=i)
            producer.flush(30)
            progress.update(sent, completed=messages)
            produced_s = time.perf_counter() - t0
            received = 0
            # Timed from the first message: a new group first waits out the broker's
            # group.initial.rebalance.delay.ms (3 s, as Kafka) so members join together.
            t1: float | None = None
            deadline = time.monotonic() + 60
            while received < messages and time.monotonic() < deadline:
                for msg in consumer.consume(10_000, 0.5):
                    if msg.error() is None:
                        if t1 is None:
                            t1 = time.perf_counter()
                        received += 1
                progress.update(got, completed=received)
            consumed_s = time.perf_counter() - (t1 if t1 is not None else time.perf_counter())
        consumer.close()
        del producer  # closes its connections before the broker stops: no reconnect noise
        table = Table(title="messages through the haeryu broker")
        for col in ("step", "messages", "seconds", "msgs/s"):
            table.add_column(col, justify="right")
        table.add_row(
            "produce (acks=all)",
            str(messages),
            f"{produced_s:.2f}",
            f"{messages / produced_s:,.0f}",
        )
        table.add_row(
            "consume (group)",
            str(received),
            f"{consumed_s:.2f}",
            f"{received / max(consumed_s, 1e-9):,.0f}",
        )
        console.print(table)
        if received != messages:
            console.print(f"[red]only {received} of {messages} messages came back[/]")
            raise SystemExit(1)
        console.print("[green]every message came back[/]")
