"""An in-process broker for tests: its own event loop in a background thread.

>>> from haeryu.broker.embedded import embedded_broker
>>> with embedded_broker() as broker:                       # doctest: +SKIP
...     broker.create_topic("events", partitions=3)
...     producer = confluent_kafka.Producer({"bootstrap.servers": broker.bootstrap})

The broker listens on a free port of 127.0.0.1, keeps its data in a temporary directory
unless given one, and stops cleanly (flushing its logs) when the ``with`` block ends,
even when the block raises. Real Kafka clients connect to :attr:`EmbeddedBroker.bootstrap`
exactly as they would to any broker. Nothing global is touched, so one test may run
several brokers side by side.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from haeryu.broker.config import BrokerConfig
from haeryu.broker.server import Broker
from haeryu.broker.state import BrokerState

__all__ = ["EmbeddedBroker", "embedded_broker"]

T = TypeVar("T")

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


class EmbeddedBroker:
    """A running in-process broker with a synchronous API (see :func:`embedded_broker`)."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self._broker = Broker(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, name="haeryu-embedded-broker", daemon=True
        )
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()

    # -- lifecycle -----------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._broker.start())
        except BaseException as exc:
            self._started.set_exception(exc)
            self._loop.close()
            return
        self._started.set_result(None)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def start(self) -> None:
        """Start the broker thread and wait until it accepts connections."""
        self._thread.start()
        self._started.result(_START_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the broker (logs flushed, connections closed) and join its thread."""
        if not self._thread.is_alive():
            return
        try:
            self.call(self._broker.stop, timeout=_STOP_TIMEOUT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_STOP_TIMEOUT_S)

    # -- what tests use --------------------------------------------------------------

    @property
    def host(self) -> str:
        return self.config.advertised

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def bootstrap(self) -> str:
        """``host:port`` to give clients as ``bootstrap.servers``."""
        return self._broker.bootstrap

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    def call(self, fn: Callable[[], Any], *, timeout: float | None = 30.0) -> Any:
        """Run ``fn()`` on the broker's loop and return its result (awaited if a coroutine).

        Domain operations must run on the loop that owns the broker's state; this is how
        a test thread reaches them, e.g. ``broker.call(lambda: broker.state.topics.get("t"))``.
        """

        async def invoke() -> Any:
            result = fn()
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    @property
    def state(self) -> BrokerState:
        """The broker's state; touch it only through :meth:`call`."""
        return self._broker.state

    def create_topic(
        self, name: str, partitions: int = 1, configs: Mapping[str, str] | None = None
    ) -> None:
        """Create a topic (raises :class:`~haeryu.broker.errors.TopicError` on refusal)."""
        self.call(lambda: self._broker.state.create_topic(name, partitions, configs))

    def delete_topic(self, name: str) -> None:
        """Delete a topic with its data and committed offsets."""
        self.call(lambda: self._broker.state.delete_topic(name))

    def end_offsets(self, topic: str) -> list[int]:
        """The log end offset of every partition of ``topic``."""

        def ends() -> list[int]:
            t = self._broker.state.topics.get(topic)
            return [] if t is None else [p.log_end_offset for p in t.partitions]

        result: list[int] = self.call(ends)
        return result

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        """The offsets ``group`` has committed, by (topic, partition)."""
        offsets = self.call(lambda: self._broker.state.groups.fetch(group))
        return {tp: c.offset for tp, c in offsets.items()}


@contextmanager
def embedded_broker(
    data_dir: str | Path | None = None, **settings: Any
) -> Iterator[EmbeddedBroker]:
    """Run a broker in this process for the duration of the ``with`` block.

    ``settings`` are :class:`~haeryu.broker.config.BrokerConfig` fields (for example
    ``num_partitions=3`` or ``fsync="always"``), or Kafka-style keys passed as
    ``**{"log.retention.ms": "1000"}``. Defaults differ from a production
    broker where tests want it: port 0 (a free port) on 127.0.0.1, and
    ``group_initial_rebalance_delay_ms=0`` so consumer groups form at once, as Kafka's
    own test harnesses configure it. Without ``data_dir`` the data lives in a temporary
    directory removed afterwards, and fsync is left to the OS (``fsync="never"``).
    """
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("port", 0)
    settings.setdefault("group_initial_rebalance_delay_ms", 0)
    with _data_directory(data_dir) as directory:
        if data_dir is None:
            settings.setdefault("fsync", "never")
        keys = {k: str(settings.pop(k)) for k in list(settings) if "." in k}
        broker = EmbeddedBroker(BrokerConfig.from_settings(keys, data_dir=directory, **settings))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


@contextmanager
def _data_directory(data_dir: str | Path | None) -> Iterator[Path]:
    """``data_dir`` itself, or a temporary directory removed on exit."""
    if data_dir is not None:
        yield Path(data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="haeryu-broker-") as tmp:
        yield Path(tmp)
