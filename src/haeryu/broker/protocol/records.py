"""Kafka RecordBatch v2 (magic 2): header parsing, produce-time validation, codec.

Wire/disk layout of one batch (big-endian, offsets in bytes)::

     0 baseOffset int64          27 baseTimestamp int64
     8 batchLength int32         35 maxTimestamp int64
    12 partitionLeaderEpoch      43 producerId int64
    16 magic int8 (= 2)          51 producerEpoch int16
    17 crc uint32 (CRC-32C)      53 baseSequence int32
    21 attributes int16          57 recordCount int32
    23 lastOffsetDelta int32     61 records (possibly compressed)

``batchLength`` counts the bytes after itself, so a batch occupies
``batchLength + 12`` bytes. The CRC covers bytes ``[21:]``, which is why the broker
can rewrite ``baseOffset`` (and ``partitionLeaderEpoch``) without recomputing it.

The broker's hot path only touches headers (:func:`parse_header`,
:func:`validate_produced_batch`, :func:`iter_batches`); per-record work
(:func:`decode_records`, :func:`encode_batch`) is for tests, ListOffsets and compaction.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cramjam
import crc32c

from haeryu.broker.errors import ErrorCode
from haeryu.broker.protocol.varint import VarintError, read_varint, write_varint

__all__ = [
    "BATCH_HEADER_SIZE",
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "BatchHeader",
    "InvalidRecordBatch",
    "Record",
    "compress",
    "decode_records",
    "decompress",
    "encode_batch",
    "iter_batches",
    "keyless_records",
    "parse_header",
    "validate_produced_batch",
]

BATCH_HEADER_SIZE = 61
# Bytes before the CRC-covered region, and the smallest legal batchLength.
CRC_START = 21
LENGTH_OFFSET = 8
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - 12
MAGIC_V2 = 2

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4

ATTR_COMPRESSION_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20

_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH = struct.Struct(">i")
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE = 16  # magic + int32 version + int32 min compatible version

Headers = list[tuple[str, bytes | None]]


class InvalidRecordBatch(Exception):
    """A batch the broker must refuse; ``error_code`` is the Kafka error to answer with."""

    def __init__(self, message: str, error_code: ErrorCode = ErrorCode.corrupt_message) -> None:
        super().__init__(message)
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The 61-byte fixed header of a v2 record batch (see module docstring for layout)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Total bytes the batch occupies, header included."""
        return self.batch_length + 12

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        """0 = CreateTime, 1 = LogAppendTime."""
        return (self.attributes & ATTR_TIMESTAMP_TYPE) >> 3

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


@dataclass(slots=True)
class Record:
    """One decoded record; ``offset`` and ``timestamp`` are absolute."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the fixed header at ``buf[pos:]``; only the layout is checked, not the CRC."""
    if len(buf) - pos < BATCH_HEADER_SIZE:
        raise InvalidRecordBatch(
            f"record batch header needs {BATCH_HEADER_SIZE} bytes, got {max(len(buf) - pos, 0)}"
        )
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def validate_produced_batch(
    buf: bytes | bytearray | memoryview, max_message_bytes: int
) -> BatchHeader:
    """Check a Produce request's records field the way a broker must before appending.

    ``buf`` must hold exactly one v2 batch. Only header fields and the CRC are
    inspected, never individual records, so this stays O(1) Python work per batch.
    """
    header = parse_header(buf)
    if header.magic != MAGIC_V2:
        raise InvalidRecordBatch(
            f"record batch magic {header.magic} is not supported; only magic 2 (Kafka 0.11+)",
            ErrorCode.unsupported_for_message_format,
        )
    if header.batch_length < MIN_BATCH_LENGTH or header.size != len(buf):
        raise InvalidRecordBatch(
            f"batchLength {header.batch_length} does not match the {len(buf)} bytes received "
            "(a produce request must carry exactly one record batch)"
        )
    if header.size > max_message_bytes:
        raise InvalidRecordBatch(
            f"record batch of {header.size} bytes exceeds max.message.bytes={max_message_bytes}",
            ErrorCode.message_too_large,
        )
    actual = crc32c.crc32c(memoryview(buf)[CRC_START:])
    if actual != header.crc:
        raise InvalidRecordBatch(
            f"record batch CRC mismatch: header says {header.crc:#010x}, data is {actual:#010x}"
        )
    if header.attributes & ATTR_CONTROL:
        raise InvalidRecordBatch(
            "clients may not produce control batches", ErrorCode.invalid_record
        )
    if header.compression > COMPRESSION_ZSTD:
        raise InvalidRecordBatch(
            f"unknown compression codec {header.compression}",
            ErrorCode.unsupported_compression_type,
        )
    if header.record_count < 1 or header.last_offset_delta != header.record_count - 1:
        raise InvalidRecordBatch(
            f"record batch has recordCount={header.record_count} and "
            f"lastOffsetDelta={header.last_offset_delta}; "
            "expected lastOffsetDelta = recordCount - 1 >= 0",
            ErrorCode.invalid_record,
        )
    return header


def batch_crc_ok(buf: bytes | bytearray | memoryview, pos: int, header: BatchHeader) -> bool:
    """True if the CRC of the batch at ``buf[pos:]`` matches its header."""
    view = memoryview(buf)[pos + CRC_START : pos + header.size]
    return crc32c.crc32c(view) == header.crc


def iter_batches(
    buf: bytes | bytearray | memoryview, pos: int = 0, *, allow_partial_tail: bool = False
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for each batch in a concatenation of batches.

    A truncated last batch raises :class:`InvalidRecordBatch` unless
    ``allow_partial_tail`` (Fetch responses may legally end mid-batch).
    """
    end = len(buf)
    while pos < end:
        if end - pos < BATCH_HEADER_SIZE:
            if allow_partial_tail:
                return
            raise InvalidRecordBatch(f"truncated record batch header at byte {pos}")
        header = BatchHeader(*_HEADER.unpack_from(buf, pos))
        if header.batch_length < MIN_BATCH_LENGTH:
            raise InvalidRecordBatch(f"batchLength {header.batch_length} too small at byte {pos}")
        if pos + header.size > end:
            if allow_partial_tail:
                return
            raise InvalidRecordBatch(f"truncated record batch at byte {pos}")
        yield pos, header
        pos += header.size


# --- compression -----------------------------------------------------------------


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Decompress a batch's records section as Kafka clients write it."""
    try:
        if codec == COMPRESSION_NONE:
            return bytes(data)
        if codec == COMPRESSION_GZIP:
            return bytes(cramjam.gzip.decompress(data))
        if codec == COMPRESSION_SNAPPY:
            return _snappy_decompress(bytes(data))
        if codec == COMPRESSION_LZ4:
            return bytes(cramjam.lz4.decompress(data))
        if codec == COMPRESSION_ZSTD:
            return bytes(cramjam.zstd.decompress(data))
    except cramjam.DecompressionError as exc:
        raise InvalidRecordBatch(f"cannot decompress records (codec {codec}): {exc}") from exc
    raise InvalidRecordBatch(
        f"unknown compression codec {codec}", ErrorCode.unsupported_compression_type
    )


def _snappy_decompress(data: bytes) -> bytes:
    # The Java client writes xerial-framed snappy; librdkafka writes raw snappy.
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    pos = _XERIAL_HEADER_SIZE
    while pos < len(data):
        if pos + 4 > len(data):
            raise InvalidRecordBatch("truncated xerial snappy chunk header")
        (n,) = _LENGTH.unpack_from(data, pos)
        pos += 4
        if n < 0 or pos + n > len(data):
            raise InvalidRecordBatch("truncated xerial snappy chunk")
        out += cramjam.snappy.decompress_raw(data[pos : pos + n])
        pos += n
    return bytes(out)


def compress(codec: int, data: bytes) -> bytes:
    """Compress a records section in a form every Kafka client can read.

    snappy is written raw (Java's xerial reader falls back to raw), lz4 as an LZ4
    frame with independent blocks (Java's KafkaLZ4BlockInputStream needs them).
    """
    if codec == COMPRESSION_NONE:
        return data
    if codec == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == COMPRESSION_SNAPPY:
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == COMPRESSION_LZ4:
        compressor = cramjam.lz4.Compressor(block_linked=False)
        compressor.compress(data)
        return bytes(compressor.finish())
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown compression codec {codec}")


# --- varints ---------------------------------------------------------------------


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_varint(buf, pos)
    if n < 0:
        return None, pos
    if pos + n > len(buf):
        raise InvalidRecordBatch("record field runs past the end of the batch")
    return buf[pos : pos + n], pos + n


def _write_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        write_varint(out, -1)
    else:
        write_varint(out, len(value))
        out += value


# --- records ---------------------------------------------------------------------


def decode_records(batch: bytes | bytearray | memoryview) -> list[Record]:
    """Decode every record of one batch (decompressing if needed).

    With LogAppendTime every record's timestamp is the batch's maxTimestamp, as Kafka
    clients report it.
    """
    header = parse_header(batch)
    if header.magic != MAGIC_V2:
        raise InvalidRecordBatch(
            f"record batch magic {header.magic} is not supported",
            ErrorCode.unsupported_for_message_format,
        )
    if len(batch) < header.size:
        raise InvalidRecordBatch("truncated record batch")
    body = decompress(header.compression, memoryview(batch)[BATCH_HEADER_SIZE : header.size])
    try:
        return _decode_body(header, body)
    except VarintError as exc:
        raise InvalidRecordBatch(f"bad varint in record: {exc}") from exc


def _decode_body(header: BatchHeader, body: bytes) -> list[Record]:
    log_append_time = header.timestamp_type == 1
    records: list[Record] = []
    pos = 0
    for _ in range(header.record_count):
        length, pos = read_varint(body, pos)
        end = pos + length
        if length < 0 or end > len(body):
            raise InvalidRecordBatch("record length runs past the end of the batch")
        pos += 1  # record attributes: unused by Kafka
        ts_delta, pos = read_varint(body, pos)
        offset_delta, pos = read_varint(body, pos)
        key, pos = _read_bytes(body, pos)
        value, pos = _read_bytes(body, pos)
        n_headers, pos = read_varint(body, pos)
        headers: Headers = []
        for _ in range(n_headers):
            hkey, pos = _read_bytes(body, pos)
            hvalue, pos = _read_bytes(body, pos)
            headers.append(((hkey or b"").decode("utf-8", "replace"), hvalue))
        if pos != end:
            raise InvalidRecordBatch("record length does not match its fields")
        timestamp = header.max_timestamp if log_append_time else header.base_timestamp + ts_delta
        records.append(Record(header.base_offset + offset_delta, timestamp, key, value, headers))
    return records


def keyless_records(batch: bytes | bytearray | memoryview) -> list[int]:
    """Indexes (within the batch) of the records that have no key."""
    return [i for i, r in enumerate(decode_records(batch)) if r.key is None]


RecordInput = Record | tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int]


def encode_batch(
    records: Sequence[RecordInput],
    *,
    base_offset: int = 0,
    compression: int = COMPRESSION_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    timestamp_type: int = 0,
    transactional: bool = False,
    control: bool = False,
    last_offset_delta: int | None = None,
    max_timestamp: int | None = None,
) -> bytes:
    """Build one v2 batch with a valid CRC.

    ``records`` are ``(key, value, headers, timestamp)`` tuples (offset deltas 0, 1, …)
    or :class:`Record` objects (offset delta = ``record.offset - base_offset``, so gaps
    left by compaction survive). ``last_offset_delta`` may exceed the last record's
    delta, as Kafka's cleaner keeps a batch's last offset for producer sequencing.
    """
    body = bytearray()
    deltas: list[int] = []
    timestamps: list[int] = []
    for i, rec in enumerate(records):
        if isinstance(rec, Record):
            deltas.append(rec.offset - base_offset)
            timestamps.append(rec.timestamp)
        else:
            deltas.append(i)
            timestamps.append(rec[3])
    base_ts = timestamps[0] if timestamps else -1
    for rec, delta, ts in zip(records, deltas, timestamps, strict=True):
        key, value, headers = (
            (rec.key, rec.value, rec.headers) if isinstance(rec, Record) else rec[:3]
        )
        rbody = bytearray(b"\x00")
        write_varint(rbody, ts - base_ts)
        write_varint(rbody, delta)
        _write_bytes(rbody, key)
        _write_bytes(rbody, value)
        write_varint(rbody, len(headers))
        for hkey, hvalue in headers:
            _write_bytes(rbody, hkey.encode("utf-8"))
            _write_bytes(rbody, hvalue)
        write_varint(body, len(rbody))
        body += rbody
    payload = compress(compression, bytes(body))
    if last_offset_delta is None:
        last_offset_delta = deltas[-1] if deltas else 0
    if max_timestamp is None:
        max_timestamp = max(timestamps) if timestamps else -1
    attributes = compression & ATTR_COMPRESSION_MASK
    if timestamp_type:
        attributes |= ATTR_TIMESTAMP_TYPE
    if transactional:
        attributes |= ATTR_TRANSACTIONAL
    if control:
        attributes |= ATTR_CONTROL
    out = bytearray(
        _HEADER.pack(
            base_offset,
            BATCH_HEADER_SIZE - 12 + len(payload),
            partition_leader_epoch,
            MAGIC_V2,
            0,
            attributes,
            last_offset_delta,
            base_ts,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
    )
    out += payload
    struct.pack_into(">I", out, 17, crc32c.crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)
