"""RecordBatch v2 codec: header parsing, produce validation, record decoding."""

from __future__ import annotations

import contextlib
import struct

import cramjam
import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.broker.errors import ErrorCode
from haeryu.broker.protocol.records import (
    BATCH_HEADER_SIZE,
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    InvalidRecordBatch,
    Record,
    decode_records,
    encode_batch,
    iter_batches,
    parse_header,
    validate_produced_batch,
)

RECORDS = [
    (b"key-0", b"value-0", [("trace", b"abc"), ("empty", None)], 1_000),
    (None, b"value-1", [], 1_005),
    (b"key-2", None, [], 998),
]


def _recrc(buf: bytearray) -> bytes:
    struct.pack_into(">I", buf, 17, crc32c.crc32c(bytes(buf[21:])))
    return bytes(buf)


def _with_body(plain: bytes, codec: int, body: bytes) -> bytes:
    """Re-wrap the records of an uncompressed batch as a client using ``codec`` would."""
    out = bytearray(plain[:BATCH_HEADER_SIZE]) + body
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">h", out, 21, codec)
    return _recrc(out)


# --- header and validation -----------------------------------------------------------


def test_header_fields_round_trip() -> None:
    data = encode_batch(
        RECORDS,
        base_offset=42,
        producer_id=7,
        producer_epoch=3,
        base_sequence=11,
        partition_leader_epoch=5,
        transactional=True,
    )
    h = parse_header(data)
    assert (h.base_offset, h.magic, h.record_count, h.last_offset_delta) == (42, 2, 3, 2)
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (7, 3, 11)
    assert (h.base_timestamp, h.max_timestamp) == (1_000, 1_005)
    assert h.size == len(data) and h.last_offset == 44
    assert h.is_transactional and not h.is_control and h.compression == 0
    assert h.timestamp_type == 0 and h.partition_leader_epoch == 5


def test_validate_accepts_a_client_batch() -> None:
    data = encode_batch(RECORDS, partition_leader_epoch=99)
    assert validate_produced_batch(data, 1 << 20).record_count == 3
    assert validate_produced_batch(memoryview(data), len(data)).size == len(data)


@pytest.mark.parametrize("where", [30, BATCH_HEADER_SIZE + 3, -1])
def test_crc_mismatch_is_corrupt_message(where: int) -> None:
    data = bytearray(encode_batch(RECORDS))
    data[where] ^= 0x40
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(bytes(data), 1 << 20)
    assert exc.value.error_code == ErrorCode.corrupt_message


def test_base_offset_is_not_covered_by_crc() -> None:
    data = bytearray(encode_batch(RECORDS))
    struct.pack_into(">q", data, 0, 123456)
    struct.pack_into(">i", data, 12, 77)  # partitionLeaderEpoch: also outside the CRC
    assert validate_produced_batch(bytes(data), 1 << 20).base_offset == 123456


@pytest.mark.parametrize("magic", [0, 1, 3])
def test_other_magic_is_unsupported(magic: int) -> None:
    data = bytearray(encode_batch(RECORDS))
    data[16] = magic
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(bytes(data), 1 << 20)
    assert exc.value.error_code == ErrorCode.unsupported_for_message_format


def test_too_large_is_message_too_large() -> None:
    data = encode_batch(RECORDS)
    validate_produced_batch(data, len(data))
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(data, len(data) - 1)
    assert exc.value.error_code == ErrorCode.message_too_large


def test_control_batch_from_a_client_is_invalid_record() -> None:
    data = encode_batch([(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", [], 1)], control=True)
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(data, 1 << 20)
    assert exc.value.error_code == ErrorCode.invalid_record


def test_offset_delta_mismatch_is_invalid_record() -> None:
    data = encode_batch(RECORDS, last_offset_delta=5)
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(data, 1 << 20)
    assert exc.value.error_code == ErrorCode.invalid_record
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(encode_batch([], last_offset_delta=0), 1 << 20)
    assert exc.value.error_code == ErrorCode.invalid_record


def test_unknown_codec_is_rejected() -> None:
    data = bytearray(encode_batch(RECORDS))
    struct.pack_into(">h", data, 21, 6)
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(_recrc(data), 1 << 20)
    assert exc.value.error_code == ErrorCode.unsupported_compression_type


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],  # truncated
        lambda d: d + b"\x00",  # trailing garbage
        lambda d: d + d,  # two batches
        lambda d: d[: BATCH_HEADER_SIZE - 1],  # short header
        lambda d: b"",
    ],
)
def test_length_must_match_exactly_one_batch(mangle: object) -> None:
    data = mangle(encode_batch(RECORDS))  # type: ignore[operator]
    with pytest.raises(InvalidRecordBatch) as exc:
        validate_produced_batch(data, 1 << 20)
    assert exc.value.error_code == ErrorCode.corrupt_message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 150), st.binary(min_size=1, max_size=4))
def test_validate_never_fails_other_than_invalid_record_batch(
    noise: bytes, where: int, patch: bytes
) -> None:
    """Fuzz: any input is either accepted or refused with InvalidRecordBatch."""
    data = bytearray(encode_batch(RECORDS) + noise)
    data[where : where + len(patch)] = patch
    for buf in (bytes(data), bytes(data[: len(data) // 2])):
        with contextlib.suppress(InvalidRecordBatch):
            validate_produced_batch(buf, 1 << 20)
        with contextlib.suppress(InvalidRecordBatch):
            decode_records(buf)


# --- record decoding -----------------------------------------------------------------


def test_decode_uncompressed() -> None:
    recs = decode_records(encode_batch(RECORDS, base_offset=100))
    assert recs == [
        Record(100, 1_000, b"key-0", b"value-0", [("trace", b"abc"), ("empty", None)]),
        Record(101, 1_005, None, b"value-1", []),
        Record(102, 998, b"key-2", None, []),
    ]


def _xerial(raw: bytes, chunk: int = 7) -> bytes:
    out = bytearray(b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1))
    for i in range(0, len(raw), chunk):
        block = bytes(cramjam.snappy.compress_raw(raw[i : i + chunk]))
        out += struct.pack(">i", len(block)) + block
    return bytes(out)


@pytest.mark.parametrize(
    ("codec", "compressor"),
    [
        (COMPRESSION_GZIP, lambda b: bytes(cramjam.gzip.compress(b))),
        (COMPRESSION_SNAPPY, lambda b: bytes(cramjam.snappy.compress_raw(b))),
        (COMPRESSION_SNAPPY, _xerial),
        (COMPRESSION_LZ4, lambda b: bytes(cramjam.lz4.compress(b))),
        (COMPRESSION_ZSTD, lambda b: bytes(cramjam.zstd.compress(b))),
    ],
    ids=["gzip", "snappy-raw", "snappy-xerial", "lz4-frame", "zstd"],
)
def test_decode_compressed_as_clients_write_it(codec: int, compressor: object) -> None:
    plain = encode_batch(RECORDS, base_offset=9)
    data = _with_body(plain, codec, compressor(plain[BATCH_HEADER_SIZE:]))  # type: ignore[operator]
    assert validate_produced_batch(data, 1 << 20).compression == codec
    assert decode_records(data) == decode_records(plain)


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_encode_compressed_round_trip(codec: int) -> None:
    many = [(b"k%d" % i, b"v" * 300, [], 5_000 + i) for i in range(50)]
    data = encode_batch(many, compression=codec)
    assert validate_produced_batch(data, 1 << 20).compression == codec
    assert [(r.key, r.value, r.timestamp) for r in decode_records(data)] == [
        (k, v, t) for k, v, _, t in many
    ]
    if codec:
        assert len(data) < len(encode_batch(many))


def test_log_append_time_reports_max_timestamp() -> None:
    data = encode_batch(RECORDS, timestamp_type=1, max_timestamp=77_777)
    assert {r.timestamp for r in decode_records(data)} == {77_777}


def test_record_objects_keep_offset_gaps() -> None:
    kept = [Record(10, 1, b"a", b"1", []), Record(13, 2, b"b", None, [])]
    data = encode_batch(kept, base_offset=10, last_offset_delta=5)
    h = parse_header(data)
    assert (h.record_count, h.last_offset) == (2, 15)
    assert decode_records(data) == kept


def test_garbage_in_compressed_payload_is_corrupt() -> None:
    plain = encode_batch(RECORDS)
    data = _with_body(plain, COMPRESSION_ZSTD, b"not zstd at all")
    with pytest.raises(InvalidRecordBatch):
        decode_records(data)


def test_interoperates_with_kafka_python() -> None:
    default_records = pytest.importorskip("kafka.record.default_records")
    for codec in (COMPRESSION_NONE, COMPRESSION_GZIP):
        ours = default_records.DefaultRecordBatch(encode_batch(RECORDS, compression=codec))
        assert ours.validate_crc()
        assert [(r.key, r.value, r.timestamp) for r in ours] == [
            (k, v, t) for k, v, _, t in RECORDS
        ]
        builder = default_records.DefaultRecordBatchBuilder(
            magic=2,
            compression_type=codec,
            is_transactional=False,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 20,
        )
        for i, (k, v, _, t) in enumerate(RECORDS):
            builder.append(i, timestamp=t, key=k, value=v, headers=[])
        theirs = bytes(builder.build())
        validate_produced_batch(theirs, 1 << 20)
        assert [(r.key, r.value) for r in decode_records(theirs)] == [
            (k, v) for k, v, _, _ in RECORDS
        ]


# --- iteration -----------------------------------------------------------------------


def test_iter_batches_walks_a_concatenation() -> None:
    parts = [encode_batch(RECORDS[: i + 1], base_offset=10 * i) for i in range(3)]
    buf = b"".join(parts)
    found = list(iter_batches(buf))
    assert [p for p, _ in found] == [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    assert [h.base_offset for _, h in found] == [0, 10, 20]
    assert list(iter_batches(buf[:-5], allow_partial_tail=True)) == found[:2]
    with pytest.raises(InvalidRecordBatch):
        list(iter_batches(buf[:-5]))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none() | st.binary(max_size=20),
            st.none() | st.binary(max_size=200),
            st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=5)), max_size=3),
            st.integers(0, 2**41),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([0, 1, 2, 3, 4]),
    st.integers(0, 2**40),
)
def test_encode_decode_round_trip(
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]],
    codec: int,
    base: int,
) -> None:
    data = encode_batch(records, compression=codec, base_offset=base)
    validate_produced_batch(data, 1 << 24)
    assert decode_records(data) == [
        Record(base + i, t, k, v, list(h)) for i, (k, v, h, t) in enumerate(records)
    ]
