"""A connector's durable position: where to resume after a restart or a kill -9."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class PositionStore:
    """One JSON document per connector, replaced atomically.

    :meth:`save` writes a temporary file, fsyncs it, renames it over the old one and
    fsyncs the directory: after a crash :meth:`load` returns the last saved document
    whole, never a torn one.  Connectors save only positions whose records Kafka has
    acknowledged.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The last saved position, ``None`` before the first save."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError(f"{self.path}: expected a JSON object, found {type(loaded).__name__}")
        return loaded

    def save(self, position: dict[str, Any]) -> None:
        """Replace the stored position with ``position`` (JSON-serialisable), durably."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = json.dumps(position, separators=(",", ":")).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class MemoryPositions(PositionStore):
    """Positions kept in memory, for tests of a connector's logic."""

    def __init__(self) -> None:
        super().__init__(Path("<memory>"))
        self.saved: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        return None if self.saved is None else json.loads(json.dumps(self.saved))

    def save(self, position: dict[str, Any]) -> None:
        self.saved = json.loads(json.dumps(position))
