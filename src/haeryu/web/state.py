"""What the web process knows: live cluster samples, the stack's status, the warehouse."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

from haeryu.alerts.rules import AlertStore
from haeryu.kafka.inspect import ClusterView
from haeryu.stack.registry import PROCESSES, ProcessSpec
from haeryu.stack.sampler import Sampler
from haeryu.web.factory_feed import FactoryFeed
from haeryu.web.fraud_feed import FraudFeed
from haeryu.web.settings import WebSettings

log = logging.getLogger(__name__)

__all__ = ["SqlResult", "WebState"]

_SAVED_NAME = re.compile(r"^[\w\- .]{1,64}$")


def _dir_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # deleted while we walk: compaction, vacuum
                total += os.stat(os.path.join(root, name)).st_size
    return total


class SqlResult:
    """A query's result as JSON-ready columns and rows."""

    def __init__(self, frame: pl.DataFrame, elapsed_ms: float) -> None:
        self.frame = frame
        self.elapsed_ms = elapsed_ms

    def to_dict(self, max_rows: int = 1000) -> dict[str, Any]:
        shown = self.frame.head(max_rows)
        rows = [
            {
                k: (v if isinstance(v, int | float | str | bool) or v is None else str(v))
                for k, v in r.items()
            }
            for r in shown.to_dicts()
        ]
        return {
            "columns": self.frame.columns,
            "types": [str(t) for t in self.frame.dtypes],
            "rows": rows,
            "row_count": self.frame.height,
            "elapsed_ms": round(self.elapsed_ms, 1),
        }


class WebState:
    """Shared by pages, the REST API and ``/metrics`` of one web process."""

    def __init__(self, settings: WebSettings, specs: list[ProcessSpec] | None = None) -> None:
        self.settings = settings
        self.specs = list(PROCESSES if specs is None else specs)
        self.sampler = Sampler(settings.bootstrap, self.specs)
        self.view = ClusterView(settings.bootstrap)
        self.alerts = AlertStore(settings.data_dir / "alerts")
        self.factory = FactoryFeed(settings.bootstrap, settings.data_dir)
        self.fraud = FraudFeed(settings.bootstrap)
        self._warehouse: Any = None
        self._search: Any = None
        self._sql_lock = threading.Lock()
        self._sizes: dict[str, int] = {}
        self._sizes_at = 0.0

    def start(self) -> None:
        self.sampler.start()
        self.factory.start()
        self.fraud.start()

    def stop(self) -> None:
        self.sampler.stop()
        self.factory.stop()
        self.fraud.stop()
        if self._warehouse is not None:
            self._warehouse.close()

    # -- the stack ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The supervisor's last status (``<data>/run/status.json``), or an empty one."""
        path = self.settings.data_dir / "run" / "status.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {"processes": []}

    def storage(self) -> dict[str, int]:
        """Bytes used per part of the data directory (recounted every 10 s)."""
        if time.monotonic() - self._sizes_at > 10:
            root = self.settings.data_dir
            parts = {"broker": root / "broker", "lake": Path(self.settings.lake_root)}
            parts.update(
                {
                    p.name: p
                    for p in root.iterdir()
                    if p.is_dir() and p.name not in parts and p.name != "run"
                }
                if root.exists()
                else {}
            )
            self._sizes = {name: _dir_size(p) for name, p in parts.items() if p.exists()}
            self._sizes_at = time.monotonic()
        return self._sizes

    # -- search -----------------------------------------------------------------------

    def search_store(self) -> Any:
        """The search indexes under ``DATA/search``, read-only (the pipeline writes)."""
        if self._search is None:
            from haeryu.stores.search.store import SearchStore

            root = self.settings.data_dir / "search"
            root.mkdir(parents=True, exist_ok=True)
            self._search = SearchStore(root, writable=False)
        return self._search

    # -- SQL ------------------------------------------------------------------------

    def sql(self, query: str) -> SqlResult:
        """Run SQL over the lake (one query at a time: a DuckDB connection is not shared)."""
        from haeryu.stores.warehouse import Warehouse

        with self._sql_lock:
            if self._warehouse is None:
                Path(self.settings.lake_root).mkdir(parents=True, exist_ok=True)
                self._warehouse = Warehouse(self.settings.lake_root)
            started = time.perf_counter()
            frame = self._warehouse.sql(query)
            return SqlResult(frame, (time.perf_counter() - started) * 1000)

    def tables(self) -> dict[str, list[str]]:
        from haeryu.stores.warehouse import Warehouse

        with self._sql_lock:
            if self._warehouse is None:
                Path(self.settings.lake_root).mkdir(parents=True, exist_ok=True)
                self._warehouse = Warehouse(self.settings.lake_root)
            return dict(self._warehouse.tables())

    @property
    def _saved_path(self) -> Path:
        return self.settings.data_dir / "web" / "saved_queries.json"

    def saved_queries(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._saved_path.read_text()))
        except (OSError, ValueError):
            return {}

    def save_query(self, name: str, sql: str) -> None:
        if not _SAVED_NAME.match(name):
            raise ValueError("a saved query's name is 1-64 letters, digits, spaces, - _ or .")
        saved = self.saved_queries()
        saved[name] = sql
        self._write_saved(saved)

    def delete_query(self, name: str) -> bool:
        saved = self.saved_queries()
        found = saved.pop(name, None) is not None
        self._write_saved(saved)
        return found

    def _write_saved(self, saved: dict[str, str]) -> None:
        self._saved_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._saved_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved, indent=1, ensure_ascii=False))
        tmp.replace(self._saved_path)
