"""Files and logs: tail files by glob into a Kafka topic, across rotation, truncation and
restarts.

.. code-block:: toml

    [connectors.nginx]
    type = "files"
    paths = ["/var/log/nginx/access.log"]
    topic = "web-access"
    format = "combined"          # raw | json | syslog | combined
    key_field = "remote_addr"    # from the parsed document (json, syslog, combined)

    [connectors.app]
    type = "files"
    paths = ["/srv/app/logs/*.log"]
    topic = "app-logs"
    multiline_start = '^\\d{4}-\\d\\d-\\d\\d '   # a line matching starts an entry

Delivery: a file's position (device, inode, offset, first bytes) is saved only after Kafka
acknowledged every entry before it.  After a crash or ``kill -9`` the connector resumes
there: entries before the saved position are never sent again, entries after it may be
sent twice (at most the batches in flight when it died).  At-least-once.

Rotation: a file renamed away is read to its end through its open descriptor, then closed
``rotated_close_after_s`` after it stopped growing; the new file under the name is read
from its start.  A file that shrank (copytruncate, ``> file``) is read again from its
start; lines written between copytruncate's copy and its truncation are lost there, as
with any tailer.  A glob matching the rotated copies too (``*.log*``) would read them as
new files: match only live names.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from pydantic import Field, field_validator

from haeryu.connectors.file_tail import HEAD_BYTES, FileId, TailedFile, identify
from haeryu.connectors.parsers import ParseError
from haeryu.connectors.parsers.lines import LineFormat, Parsed, line_parser
from haeryu.connectors.runtime import (
    ConnectorConfig,
    ConnectorContext,
    RecordShape,
    SourceRecord,
    TopicName,
    connector_type,
    origin_headers,
)


class FilesConfig(ConnectorConfig, RecordShape):
    """``type = "files"``."""

    paths: list[str] = Field(min_length=1)
    topic: TopicName
    format: LineFormat = "raw"
    multiline_start: str | None = None
    multiline_max_bytes: int = Field(default=1 << 20, gt=0)
    multiline_flush_s: float = Field(default=1.0, gt=0)
    max_line_bytes: int = Field(default=1 << 20, gt=0)
    start_at: Literal["beginning", "end"] = "beginning"
    poll_interval_s: float = Field(default=0.2, gt=0)
    glob_interval_s: float = Field(default=1.0, gt=0)
    rotated_close_after_s: float = Field(default=5.0, ge=0)
    read_bytes: int = Field(default=1 << 20, gt=0)
    batch_entries: int = Field(default=20_000, gt=0)

    @field_validator("multiline_start")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern.encode())
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


class FileTail:
    """The files connector.  One task reads every matched file in turn."""

    def __init__(self, config: FilesConfig) -> None:
        self.config = config
        self.files: dict[FileId, TailedFile] = {}
        self._start = (
            re.compile(config.multiline_start.encode()) if config.multiline_start else None
        )
        self._headers: dict[str, tuple[tuple[str, bytes], ...]] = {}
        self._parse: Callable[[bytes], Parsed] = line_parser(
            config.format, config.key_of, config.timestamp_of
        )

    # ------------------------------------------------------------------ files

    def _open(self, path: str, offset: int) -> TailedFile:
        return TailedFile(
            path,
            offset,
            multiline_start=self._start,
            multiline_max_bytes=self.config.multiline_max_bytes,
            flush_after_s=self.config.multiline_flush_s,
            max_line_bytes=self.config.max_line_bytes,
        )

    def _matched(self) -> dict[FileId, str]:
        found: dict[FileId, str] = {}
        for pattern in self.config.paths:
            for path in sorted(glob.glob(pattern)):
                ident = identify(path)
                if ident is not None:
                    found.setdefault(ident[0], path)
        return found

    def _resume(self, saved: dict[str, Any] | None) -> None:
        """Open the files of the saved position where it left off, rotated ones included."""
        matched = self._matched()
        entries = saved.get("files", []) if saved else []
        for entry in entries:
            fid = FileId(entry["dev"], entry["ino"])
            path = matched.get(fid) or _find_inode(entry["path"], fid)
            if path is None:
                continue  # gone while we were down: nothing left to read
            try:
                tailed = self._open(path, entry["offset"])
            except OSError:
                continue
            head = bytes.fromhex(entry["head"])
            if tailed.head[: len(head)] != head or tailed.size() < entry["offset"]:
                tailed.restart_from_zero()  # another file on that inode, or truncated
            if fid not in matched:
                tailed.rotated_at = time.monotonic()
            self.files[tailed.id] = tailed
        first_start = saved is None and self.config.start_at == "end"
        for fid, path in matched.items():
            if fid not in self.files:
                size = identify(path)
                offset = size[1] if first_start and size is not None else 0
                self.files[fid] = self._open(path, offset)

    def _discover(self) -> None:
        matched = self._matched()
        now = time.monotonic()
        for fid, path in matched.items():
            tailed = self.files.get(fid)
            if tailed is None:
                try:
                    self.files[fid] = self._open(path, 0)
                except OSError:
                    continue
            else:
                tailed.path = path
                tailed.rotated_at = None
        for fid, tailed in self.files.items():
            if fid not in matched and tailed.rotated_at is None:
                tailed.rotated_at = now

    def _position(self) -> dict[str, Any]:
        return {
            "files": [
                {
                    "path": t.path,
                    "dev": t.id.dev,
                    "ino": t.id.ino,
                    "offset": t.boundary,
                    "head": t.head[: min(HEAD_BYTES, t.boundary)].hex(),
                }
                for t in self.files.values()
            ]
        }

    # ------------------------------------------------------------------ records

    def _headers_of(self, ctx: ConnectorContext, path: str) -> tuple[tuple[str, bytes], ...]:
        headers = self._headers.get(path)
        if headers is None:
            headers = self._headers[path] = origin_headers(ctx.name, {"file": path})
        return headers

    def _records(
        self, ctx: ConnectorContext, tailed: TailedFile, entries: list[bytes]
    ) -> list[SourceRecord]:
        topic = self.config.topic
        headers = self._headers_of(ctx, tailed.path)
        parse = self._parse
        out: list[SourceRecord] = []
        for entry in entries:
            try:
                value, key, stamp = parse(entry)
            except ParseError as exc:
                out.append(ctx.dead_letter_record(entry, str(exc), {"file": tailed.path}))
                continue
            out.append(SourceRecord(topic, value, key, stamp, headers))
        return out

    def _read_batch(self, ctx: ConnectorContext) -> _Outgoing:
        """Entries from every file, up to ``batch_entries`` (boundaries move along)."""
        out = _Outgoing(self.config.topic)
        raw = self.config.format == "raw"
        now = time.monotonic()
        for tailed in list(self.files.values()):
            if tailed.truncated():
                ctx.log.info("%s shrank: reading it again from its start", tailed.path)
                tailed.restart_from_zero()
            final = (
                tailed.rotated_at is not None
                and now - tailed.rotated_at >= self.config.rotated_close_after_s
            )
            while out.size < self.config.batch_entries:
                before = tailed.read_pos
                entries = tailed.read(self.config.read_bytes, final=final)
                ctx.metrics.read(len(entries))
                if raw:
                    out.add_values(self._headers_of(ctx, tailed.path), entries)
                else:
                    out.add_records(self._records(ctx, tailed, entries))
                if tailed.read_pos == before:
                    break
        return out

    def _close_finished(self, ctx: ConnectorContext) -> bool:
        """Close rotated files read to their end; whether any was closed."""
        now = time.monotonic()
        closed = False
        for fid, tailed in list(self.files.items()):
            if (
                tailed.rotated_at is not None
                and now - tailed.rotated_at >= self.config.rotated_close_after_s
                and tailed.boundary >= tailed.size()
            ):
                ctx.log.info("closing %s (rotated away, read to its end)", tailed.path)
                tailed.close()
                del self.files[fid]
                closed = True
        return closed

    # ------------------------------------------------------------------ main loop

    async def run(self, ctx: ConnectorContext) -> None:
        self._resume(ctx.positions.load())
        ctx.log.info("tailing %d files into %s", len(self.files), self.config.topic)
        in_flight: asyncio.Task[Any] | None = None
        saved_position: dict[str, Any] | None = None
        last_glob = time.monotonic()
        try:
            while not ctx.stopping.is_set():
                if time.monotonic() - last_glob >= self.config.glob_interval_s:
                    self._discover()
                    last_glob = time.monotonic()
                batch = self._read_batch(ctx)
                # Position after this batch; stored once Kafka acknowledged it (and so
                # every batch before it).
                position = self._position()
                if in_flight is not None:
                    await in_flight
                    in_flight = None
                    await self._save(ctx, saved_position)
                ctx.metrics.behind(sum(t.lag() for t in self.files.values()))
                if batch.size:
                    in_flight = asyncio.create_task(batch.send(ctx))
                    saved_position = position
                else:
                    if self._close_finished(ctx) or position != saved_position:
                        await self._save(ctx, position)
                        saved_position = position
                    await _wait(ctx.stopping, self.config.poll_interval_s)
            if in_flight is not None:
                await in_flight
                await self._save(ctx, saved_position)
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
            for tailed in self.files.values():
                tailed.close()
            self.files.clear()

    async def _save(self, ctx: ConnectorContext, position: dict[str, Any] | None) -> None:
        if position is not None:
            await asyncio.to_thread(ctx.positions.save, position)


class _Outgoing:
    """One batch for Kafka: raw lines grouped by file (sent in bulk) and parsed records."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.values: list[tuple[tuple[tuple[str, bytes], ...], list[bytes]]] = []
        self.records: list[SourceRecord] = []
        self.size = 0

    def add_values(self, headers: tuple[tuple[str, bytes], ...], values: list[bytes]) -> None:
        if values:
            self.values.append((headers, values))
            self.size += len(values)

    def add_records(self, records: list[SourceRecord]) -> None:
        self.records.extend(records)
        self.size += len(records)

    async def send(self, ctx: ConnectorContext) -> None:
        """Returns once Kafka acknowledged all of it."""
        sends: list[Coroutine[Any, Any, object]] = [
            ctx.send_values(self.topic, values, headers) for headers, values in self.values
        ]
        if self.records:
            sends.append(ctx.send(self.records, offsets=False))
        await asyncio.gather(*sends)


def _find_inode(path: str, fid: FileId) -> str | None:
    """The file with inode ``fid`` in ``path``'s directory (renamed by rotation while the
    connector was down), else ``None``."""
    directory = os.path.dirname(path) or "."
    try:
        with os.scandir(directory) as it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_ino == fid.ino and st.st_dev == fid.dev:
                    return entry.path
    except OSError:
        return None
    return None


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


@connector_type("files", FilesConfig)
def make_file_tail(config: FilesConfig) -> FileTail:
    """Factory for ``type = "files"``."""
    return FileTail(config)
