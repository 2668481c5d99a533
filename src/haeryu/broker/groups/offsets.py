"""Durable store of committed offsets and of the consumer groups the broker knows.

Kafka keeps this in the compacted ``__consumer_offsets`` topic; a single-node broker
needs far less, so it is one append-only file replayed into memory on open.

On-disk format (``<data_dir>/__groups/groups.log``), one entry per line::

    <crc32 of PAYLOAD, 8 lowercase hex digits> <space> <PAYLOAD: compact JSON> <newline>

Payload kinds::

    {"k": "group", "g": GROUP, "type": PROTOCOL_TYPE, "gen": GENERATION}
    {"k": "commit", "g": GROUP, "o": [[TOPIC, PARTITION, OFFSET, LEADER_EPOCH, METADATA], ...]}
    {"k": "delete_offsets", "g": GROUP, "tp": [[TOPIC, PARTITION], ...]}
    {"k": "delete_group", "g": GROUP}

One OffsetCommit request is one line, so a commit is applied whole or not at all. JSON
escapes newlines inside strings, so a newline only ever ends an entry. Replay stops at
the first entry that is torn (no newline), fails its CRC or does not parse, and the file
is truncated there — the same rule as Kafka's log recovery. When the file has grown past
``compact_min_bytes`` and twice the size of the live state it is rewritten compactly
(write ``groups.log.tmp``, fsync, rename over, fsync the directory): on open, and while
running whenever the owner calls :meth:`OffsetStore.maybe_compact`.

Member state is deliberately not stored: like Kafka, a restarted broker forgets members
and clients rejoin.

Thread-safety: every method except :meth:`OffsetStore.flush` must be called from the
thread that owns the store (the broker's event loop). ``flush`` only fsyncs the file
descriptor, so the durability manager may call it from a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from haeryu.broker.files import fsync_directory, make_dirs, write_atomic

__all__ = ["CommittedOffset", "GroupRecord", "OffsetStore", "SyncPolicy", "TopicPartition"]

log = logging.getLogger(__name__)

SyncPolicy = Literal["always", "interval", "never"]
TopicPartition = tuple[str, int]

_DIR_NAME = "__groups"
_FILE_NAME = "groups.log"
# Offsets per snapshot line: keeps lines bounded when a group tracks many partitions.
_SNAPSHOT_CHUNK = 512


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """One committed position: next offset to consume, its leader epoch, client metadata."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What survives a restart about a group besides its offsets."""

    protocol_type: str = ""
    generation: int = 0


def _encode(payload: Mapping[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The payload of one complete line (newline stripped), or None if it is damaged."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


class OffsetStore:
    """Committed offsets and known groups, in memory and (unless in-memory) on disk.

    Use :meth:`open` for a durable store and :meth:`in_memory` in tests. ``sync_policy``
    decides when data reaches the disk: ``"always"`` asks callers to fsync before they
    acknowledge (see :attr:`sync_on_write`), ``"interval"`` leaves it to the broker's
    durability manager calling :meth:`flush`, ``"never"`` turns ``flush`` into a no-op
    and relies on the OS page cache.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        sync_policy: SyncPolicy = "interval",
        compact_min_bytes: int = 1 << 20,
    ) -> None:
        self._path = path
        self._sync_policy: SyncPolicy = sync_policy
        self._compact_min_bytes = compact_min_bytes
        self._size = 0  # bytes in the file
        self._compact_at = compact_min_bytes  # size that makes maybe_compact() rewrite
        self._groups: dict[str, GroupRecord] = {}
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._fd: int | None = None
        self._dirty = False
        self._fd_lock = threading.Lock()
        self._closed = False
        self.failure: OSError | None = None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def in_memory(cls) -> OffsetStore:
        """A store that forgets everything when the process ends."""
        return cls(None)

    @classmethod
    def open(
        cls,
        data_dir: Path | str,
        *,
        sync_policy: SyncPolicy = "interval",
        compact_min_bytes: int = 1 << 20,
    ) -> OffsetStore:
        """Open (creating if needed) the store under ``<data_dir>/__groups/``.

        Replays the log, truncates a damaged tail and, when the file is larger than
        ``compact_min_bytes`` and twice the live state, rewrites it compactly.
        """
        directory = Path(data_dir) / _DIR_NAME
        make_dirs(directory)
        store = cls(
            directory / _FILE_NAME, sync_policy=sync_policy, compact_min_bytes=compact_min_bytes
        )
        store._recover()
        return store

    def _recover(self) -> None:
        assert self._path is not None
        data = self._path.read_bytes() if self._path.exists() else b""
        valid_end = 0
        while valid_end < len(data):
            newline = data.find(b"\n", valid_end)
            payload = _decode(data[valid_end:newline]) if newline >= 0 else None
            if payload is None or not self._apply(payload):
                break
            valid_end = newline + 1
        if valid_end < len(data):
            log.warning(
                "%s: dropping %d damaged bytes after offset %d (torn or corrupt tail)",
                self._path,
                len(data) - valid_end,
                valid_end,
            )
            with open(self._path, "r+b") as f:
                f.truncate(valid_end)
                os.fsync(f.fileno())
        self._size = valid_end
        self.maybe_compact(force_check=True)
        if self._fd is None:
            existed = self._path.exists()
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not existed:
                fsync_directory(self._path.parent)  # else commits fsynced later lose the file

    def maybe_compact(self, *, force_check: bool = False) -> bool:
        """Rewrite the file as a snapshot of the live state if it has grown enough.

        Cheap to call often: the live state is only serialized once the file has grown
        past the last threshold. Returns True if the file was rewritten.
        """
        if self._path is None or self._closed:
            return False
        if self._size < self._compact_at and not force_check:
            return False
        snapshot = b"".join(self._snapshot_lines())
        self._compact_at = max(self._compact_min_bytes, 2 * len(snapshot))
        if self._size <= self._compact_at:
            return False
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._rewrite(snapshot)
            self._size, self._dirty = len(snapshot), False
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return True

    def _rewrite(self, content: bytes) -> None:
        assert self._path is not None
        write_atomic(self._path, content)

    def _snapshot_lines(self) -> Iterator[bytes]:
        for group_id, record in self._groups.items():
            yield _encode(
                {
                    "k": "group",
                    "g": group_id,
                    "type": record.protocol_type,
                    "gen": record.generation,
                }
            )
            rows = [
                [t, p, c.offset, c.leader_epoch, c.metadata]
                for (t, p), c in self._offsets.get(group_id, {}).items()
            ]
            for start in range(0, len(rows), _SNAPSHOT_CHUNK):
                chunk = rows[start : start + _SNAPSHOT_CHUNK]
                yield _encode({"k": "commit", "g": group_id, "o": chunk})

    # -- applying entries (shared by replay and live writes) ---------------------------

    def _apply(self, payload: Mapping[str, Any]) -> bool:
        """Apply one entry to memory; False if it is not a well-formed entry."""
        try:
            kind, group_id = payload["k"], payload["g"]
            if kind == "group":
                self._groups[group_id] = GroupRecord(str(payload["type"]), int(payload["gen"]))
            elif kind == "commit":
                self._groups.setdefault(group_id, GroupRecord())
                offsets = self._offsets.setdefault(group_id, {})
                for topic, partition, offset, epoch, metadata in payload["o"]:
                    offsets[(topic, int(partition))] = CommittedOffset(
                        int(offset), int(epoch), str(metadata)
                    )
            elif kind == "delete_offsets":
                offsets = self._offsets.get(group_id, {})
                for topic, partition in payload["tp"]:
                    offsets.pop((topic, int(partition)), None)
            elif kind == "delete_group":
                self._groups.pop(group_id, None)
                self._offsets.pop(group_id, None)
            else:
                return False
        except (KeyError, TypeError, ValueError):
            return False
        return True

    def _append(self, payload: Mapping[str, Any]) -> None:
        """Write one entry, then apply it: memory never shows what the file lacks.

        A failed write is cut off again so later entries are not stranded behind a torn
        line; if even that fails, or an fsync failed, the store is fenced
        (:attr:`failure`) and every later write raises until :meth:`reopen`.
        """
        if self._path is not None and self._fd is None:
            raise RuntimeError(f"offset store {self._path} is closed")
        if self.failure is not None:
            raise OSError(self.failure.errno, f"offset store is offline: {self.failure}")
        if self._fd is not None:
            encoded = _encode(payload)
            line = memoryview(encoded)
            try:
                while line:
                    line = line[os.write(self._fd, line) :]
            except OSError as exc:
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    self.failure = exc
                raise
            self._size += len(encoded)
            self._dirty = True
        self._apply(payload)

    # -- reading -----------------------------------------------------------------------

    def groups(self) -> Mapping[str, GroupRecord]:
        """Every known group id with its last recorded protocol type and generation."""
        return self._groups

    def offsets(self, group_id: str) -> Mapping[TopicPartition, CommittedOffset]:
        """The committed offsets of one group (empty if none)."""
        return self._offsets.get(group_id, {})

    # -- writing -----------------------------------------------------------------------

    def record_group(self, group_id: str, protocol_type: str, generation: int) -> None:
        """Remember that a group exists, with its protocol type and current generation."""
        if self._groups.get(group_id) == GroupRecord(protocol_type, generation):
            return
        self._append({"k": "group", "g": group_id, "type": protocol_type, "gen": generation})

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, CommittedOffset]) -> None:
        """Store offsets of one commit request as a single atomic entry."""
        rows = [[t, p, c.offset, c.leader_epoch, c.metadata] for (t, p), c in offsets.items()]
        self._append({"k": "commit", "g": group_id, "o": rows})

    def delete_offsets(self, group_id: str, partitions: Iterable[TopicPartition]) -> None:
        """Forget the committed offsets of some partitions of a group."""
        present = self._offsets.get(group_id, {})
        rows = [[t, p] for t, p in partitions if (t, p) in present]
        if rows:
            self._append({"k": "delete_offsets", "g": group_id, "tp": rows})

    def delete_group(self, group_id: str) -> None:
        """Forget a group and all its offsets."""
        if group_id in self._groups or group_id in self._offsets:
            self._append({"k": "delete_group", "g": group_id})

    # -- durability --------------------------------------------------------------------

    @property
    def sync_on_write(self) -> bool:
        """True when writers must call :meth:`flush` before acknowledging a write."""
        return self._sync_policy == "always" and self._path is not None

    def flush(self) -> None:
        """Make every write so far durable (fsync), unless the policy is ``"never"``.

        A failed fsync fences the store (see :meth:`_append`); it is never retried as
        if the data could still reach the disk.
        """
        if self.failure is not None:
            raise OSError(self.failure.errno, f"offset store is offline: {self.failure}")
        if self._sync_policy == "never" or not self._dirty:
            return
        with self._fd_lock:
            # Clear before syncing: a write racing with this fsync marks dirty again.
            self._dirty = False
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self.failure = exc
                    raise

    def reopen(self) -> None:
        """Bring a fenced store back: memory is rebuilt from what the file holds."""
        if self._path is None:
            return
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        self._groups.clear()
        self._offsets.clear()
        self.failure = None
        self._dirty = False
        try:
            self._recover()
            assert self._fd is not None
            os.fsync(self._fd)
        except OSError as exc:
            self.failure = exc
            raise

    def close(self) -> None:
        """Flush and close the file; the store is unusable afterwards."""
        self.flush()
        self._closed = True
        with self._fd_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
