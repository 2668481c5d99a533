"""One tantivy index: a time partition of a search index.

Every partition has the same fixed schema, so new fields never need a new schema:

- ``_id``: the document id (raw, stored, fast);
- ``_source``: the original document as JSON (stored only);
- ``_text``: every analyzed term, prefixed with its field (``message\\x1f온도``), one
  whitespace-separated string per document so tantivy splits it natively; keyword
  values too (``level\\x1fERROR``), for prefix and wildcard queries; positions kept for
  phrases;
- ``_kw``: a fast JSON field of typed values (keywords, numbers, dates, booleans) for
  term, range, sort and aggregations, plus ``_kw._f``: the fields the document has (for
  ``exists``);
- ``_ts``: the index's time field (fast date), for time ranges and newest-first sort.
"""

from __future__ import annotations

import json
import threading
from base64 import b64encode
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import tantivy

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Types orjson would serialize where the json module refuses go to the (absent)
# default instead, so they fail and fall back to json like before.
_ORJSON_OPTS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
SEP = "\x1f"
SPACE = "\ue000"  # stands for whitespace inside one keyword term of _text


def build_schema() -> tantivy.Schema:
    """The one schema of every partition."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("_id", stored=True, fast=True, tokenizer_name="raw")
    sb.add_bytes_field("_source", stored=True)
    sb.add_text_field("_text", tokenizer_name="whitespace", index_option="position")
    sb.add_json_field("_kw", fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_date_field("_ts", indexed=True, fast=True)
    return sb.build()


SCHEMA = build_schema()
# An empty in-memory index with the schema: parses range syntax for queries that run on
# any partition (field ids are the same in all).
PARSER = tantivy.Index(SCHEMA)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``, as ``json`` writes it (``ensure_ascii=False``).

    orjson (in Rust) on the common path; the json module when orjson refuses the value
    (non-string keys, huge ints, lone surrogates, ...) or the output may hold a
    ``null`` that was a NaN/Infinity (orjson writes those as ``null``, json as ``NaN``).
    """
    try:
        out = orjson.dumps(value, option=_ORJSON_OPTS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _encode(value).encode()
    if b"null" in out:
        return _encode(value).encode()
    return out


def term(field: str, value: str) -> str:
    """The ``_text`` term of ``value`` in ``field``."""
    return f"{field}{SEP}{value.replace(' ', SPACE)}" if " " in value else f"{field}{SEP}{value}"


class Partition:
    """A tantivy index on disk; writes need :meth:`open_writer` (one process only)."""

    def __init__(
        self, path: Path, *, create: bool, heap: int = 64_000_000, threads: int = 1
    ) -> None:
        self.path = path
        self.heap = heap
        self.threads = threads
        if create:
            path.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(SCHEMA, path=str(path), reuse=True)
        self.writer: Any = None
        self.dirty = False
        self._searcher: Any = None
        self._stamp = -1
        self.lock = threading.Lock()

    def open_writer(self) -> Any:
        """The writer, opened on the first write (takes tantivy's lock: a second writer
        process fails here)."""
        if self.writer is None:
            self.writer = self.index.writer(self.heap, self.threads)
        return self.writer

    def add(
        self, doc_id: str, source: bytes, text: str, kw: dict[str, Any], ts: datetime | None
    ) -> None:
        """Add one document (not searchable before :meth:`commit`)."""
        writer = self.open_writer()
        # The whole document as one JSON string, parsed by tantivy in Rust: one call
        # instead of a Document and five field calls per document.
        try:
            fields: dict[str, Any] = {"_id": doc_id, "_source": b64encode(source).decode()}
            if text:
                fields["_text"] = text
            if kw:
                fields["_kw"] = kw
            if ts is not None:
                fields["_ts"] = ts
            whole = orjson.dumps(fields, option=_ORJSON_OPTS & ~orjson.OPT_PASSTHROUGH_DATETIME)
        except TypeError:
            whole = b"null"
        if b"null" in whole:  # a value orjson writes differently from json: field calls
            self._add_fields(writer, doc_id, source, text, kw, ts)
        else:
            writer.add_json(whole.decode())
        self.dirty = True

    @staticmethod
    def _add_fields(
        writer: Any, doc_id: str, source: bytes, text: str, kw: dict[str, Any], ts: datetime | None
    ) -> None:
        doc = tantivy.Document()
        doc.add_text("_id", doc_id)
        doc.add_bytes("_source", source)
        if text:
            doc.add_text("_text", text)
        if kw:
            # A JSON string is parsed in Rust, cheaper than converting the dict.
            doc.add_json("_kw", dumps(kw).decode())
        if ts is not None:
            doc.add_date("_ts", ts)
        writer.add_document(doc)

    def delete(self, doc_id: str) -> None:
        """Delete every document with this id (at the next commit)."""
        self.open_writer().delete_documents_by_term("_id", doc_id)
        self.dirty = True

    def commit(self) -> bool:
        """Commit pending writes; False when there were none."""
        if not self.dirty or self.writer is None:
            return False
        self.writer.commit()
        self.dirty = False
        self._searcher = None  # the commit may land within the mtime's granularity
        return True

    def searcher(self) -> Any:
        """A searcher on the latest commit.

        Reloading costs about a millisecond, so it happens only when tantivy's
        ``meta.json`` changed (a commit, by this process or the writer process).
        """
        try:
            stamp = (self.path / "meta.json").stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        if self._searcher is None or stamp != self._stamp:
            self.index.reload()
            self._searcher = self.index.searcher()
            self._stamp = stamp
        return self._searcher

    def close(self) -> None:
        """Commit and release the writer lock."""
        if self.writer is not None:
            self.commit()
            self.writer.wait_merging_threads()
            self.writer = None

    def size_bytes(self) -> int:
        """Bytes on disk."""
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
