"""Background compaction (``optimize``) and ``vacuum`` of a Delta table.

Both run in a daemon thread next to the writer and commit like any other writer:
compaction rewrites small files into bigger ones and commits their removal and the new
file in one commit; the writer's appends are blind, so neither conflicts with the other.
A failed round (a conflict, a store outage) is logged and tried again next round; it
never reaches the writer.  Vacuum only deletes files unreferenced for ``retention_hours``
(at least one hour), so a file a writer has written but not yet committed, or one a
reader of an older version still reads, is never deleted.  It deletes both files that
commits removed (compaction) and files no commit ever added (data files of a writer
killed or fenced before its commit), once old enough.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from deltalake import DeltaTable

log = logging.getLogger(__name__)


@dataclass
class Maintenance:
    """Compact and vacuum ``uri`` every ``every`` seconds until :meth:`stop`."""

    uri: str
    every: float = 300.0
    retention_hours: int = 24
    storage_options: Mapping[str, str] | None = None
    rounds: int = 0
    compacted_files: int = 0
    vacuumed_files: int = 0
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            return
        if self.retention_hours < 1:
            raise ValueError("retention_hours must be at least 1: younger files may be in use")
        self._thread = threading.Thread(
            target=self._run, name=f"lake-maintenance {self.uri}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()

    def run_once(self) -> None:
        """One round: compact small files, then vacuum old unreferenced ones."""
        try:
            table = DeltaTable(self.uri, storage_options=dict(self.storage_options or {}) or None)
            metrics = table.optimize.compact()
            self.compacted_files += int(metrics.get("numFilesRemoved", 0))
            # full: also files no commit ever added (a writer killed or fenced after
            # writing its data files), by their age on the store
            removed = table.vacuum(
                self.retention_hours, dry_run=False, enforce_retention_duration=False, full=True
            )
            self.vacuumed_files += len(removed)
            self.rounds += 1
        except Exception as exc:
            if "no such file" in str(exc).lower() or "not a delta table" in str(exc).lower():
                return  # nothing written yet
            self.failures += 1
            log.warning("%s: maintenance round failed (retried next round): %s", self.uri, exc)
