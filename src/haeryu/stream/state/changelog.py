"""The changelog's record format: state snapshots per partition plus a manifest.

One changelog topic per input topic (``<pipeline>.changelog.<topic>``), compacted, with
as many partitions as the input; partition ``p`` holds the state of input partition
``p``.  At a checkpoint the worker writes, for every stateful operator whose state in
``p`` changed, the state as Arrow IPC chunks, then one *manifest* record naming the
chunks, the operator's event-time progress, the next input offset to read, and the
output ends used for exactly-once replay.

Record keys::

    m                              the manifest of the partition (latest wins)
    <node>/<slot>/<part>/<i>       chunk i of frame <part> of operator <node>

Every operator alternates between two slots, so writing a new snapshot never overwrites
the one the current manifest points at: a crash half-way through a checkpoint leaves
the previous manifest and its chunks intact (compaction keeps the latest record per
key, and the previous slot's keys were not written this time).  Chunk values start with
the checkpoint number, which the manifest repeats, so a stale chunk is detected.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from haeryu.stream.errors import StateError
from haeryu.stream.runtime.operator import Snapshot

MANIFEST_KEY = b"m"
_MAGIC = b"HYC1"
_CHUNK_BYTES = 700_000  # under the default 1 MB record limit, with room for headers


@dataclass
class OpEntry:
    """Where one operator's state of one partition is, and its time progress."""

    slot: int
    checkpoint: int
    parts: dict[str, int]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    """The latest checkpoint of one input partition."""

    checkpoint: int
    offset: int | None
    ops: dict[str, OpEntry] = field(default_factory=dict)
    sink_ends: dict[str, dict[int, int]] = field(default_factory=dict)

    def encode(self) -> bytes:
        """JSON bytes of the manifest."""
        return json.dumps(
            {
                "checkpoint": self.checkpoint,
                "offset": self.offset,
                "ops": {
                    n: {
                        "slot": e.slot,
                        "checkpoint": e.checkpoint,
                        "parts": e.parts,
                        "meta": e.meta,
                    }
                    for n, e in self.ops.items()
                },
                "sink_ends": {
                    t: {str(q): o for q, o in ends.items()} for t, ends in self.sink_ends.items()
                },
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        """Parse a manifest record."""
        try:
            raw = json.loads(data)
            return cls(
                int(raw["checkpoint"]),
                raw["offset"],
                {
                    n: OpEntry(
                        int(e["slot"]), int(e["checkpoint"]), dict(e["parts"]), dict(e["meta"])
                    )
                    for n, e in raw["ops"].items()
                },
                {
                    t: {int(q): int(o) for q, o in ends.items()}
                    for t, ends in raw.get("sink_ends", {}).items()
                },
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"unreadable changelog manifest: {exc}") from exc


def encode_chunks(
    node: str, slot: int, checkpoint: int, frames: dict[str, pl.DataFrame | None]
) -> tuple[list[tuple[bytes, bytes]], dict[str, int]]:
    """Records (key, value) holding ``frames``, and the chunk count of each part."""
    records: list[tuple[bytes, bytes]] = []
    parts: dict[str, int] = {}
    prefix = _MAGIC + struct.pack(">q", checkpoint)
    for part, frame in frames.items():
        if frame is None:
            parts[part] = -1  # no frame at all (differs from an empty frame)
            continue
        per_chunk = max(1, int(frame.height * _CHUNK_BYTES / max(frame.estimated_size(), 1)))
        slices = [frame.slice(i, per_chunk) for i in range(0, max(frame.height, 1), per_chunk)]
        for i, piece in enumerate(slices):
            buffer = io.BytesIO()
            piece.write_ipc(buffer, compression="lz4")
            records.append((f"{node}/{slot}/{part}/{i}".encode(), prefix + buffer.getvalue()))
        parts[part] = len(slices)
    return records, parts


def decode_snapshot(node: str, entry: OpEntry, records: dict[bytes, bytes]) -> Snapshot:
    """Rebuild the frames of ``entry`` from the latest changelog records."""
    frames: dict[str, pl.DataFrame | None] = {}
    for part, count in entry.parts.items():
        if count < 0:
            frames[part] = None
            continue
        pieces = []
        for i in range(count):
            key = f"{node}/{entry.slot}/{part}/{i}".encode()
            value = records.get(key)
            if value is None or not value.startswith(_MAGIC):
                raise StateError(f"changelog chunk {key.decode()} is missing")
            (checkpoint,) = struct.unpack(">q", value[4:12])
            if checkpoint != entry.checkpoint:
                raise StateError(
                    f"changelog chunk {key.decode()} is from checkpoint {checkpoint}, "
                    f"expected {entry.checkpoint}"
                )
            pieces.append(pl.read_ipc(io.BytesIO(value[12:])))
        frames[part] = pl.concat(pieces, how="vertical_relaxed") if pieces else None
    return frames, entry.meta


def latest_records(messages: list[tuple[bytes | None, bytes | None]]) -> dict[bytes, bytes]:
    """Fold changelog records in log order into the latest value per key."""
    out: dict[bytes, bytes] = {}
    for key, value in messages:
        if key is None:
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
