"""Running the API: in the foreground (``haeryu search serve``) or on a background
thread (tests, benchmarks), stoppable and restartable on the same port."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from haeryu.stores.search.es_api.app import DEFAULT_MAX_CONTENT_LENGTH, create_app
from haeryu.stores.search.es_api.backend import Store


def serve(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 9200,
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
    durable: bool = True,
    log_level: str = "info",
) -> None:
    """Serve the API until interrupted."""
    app = create_app(store, max_content_length=max_content_length, durable=durable)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


class BackgroundServer:
    """The API served on a thread; ``stop()`` and ``start()`` again keep the port.

    Parameters
    ----------
    store
        What to serve.
    port
        0 picks a free port at the first start; restarts reuse it.
    """

    def __init__(
        self,
        store: Store,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
        durable: bool = True,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port  # 0: the first start binds a free port, restarts keep it
        self.app: Any = create_app(store, max_content_length=max_content_length, durable=durable)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9200``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Serve; returns once the port accepts connections."""
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="search-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"search API did not start on {self.url}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"search API did not start on {self.url} in {timeout}s")
            time.sleep(0.005)
        if not self.port:
            self.port = int(server.servers[0].sockets[0].getsockname()[1])
        self._server, self._thread = server, thread

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving; open connections are closed."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"search API on {self.url} did not stop in {timeout}s")
        self._server = self._thread = None

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
