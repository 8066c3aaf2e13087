"""Record batches straight to (offsets, values) lists for the sink's kafka-python consumer.

Why: kafka-python builds a ``DefaultRecord`` and then a ``ConsumerRecord`` (13 fields) per
record, decoding six varints through function calls: about a quarter of the sink's time. The
sink only needs each record's offset and value, so this module swaps, on the sink's consumer
only, the fetcher's ``PartitionRecords`` for a subclass that yields one :class:`RecordRun` per
Kafka record batch, parsed by one inlined loop. Everything else (fetching, positions, group
membership, commits) stays kafka-python's. It relies on kafka-python 3.0.12 internals (pinned):
:func:`install` leaves the standard path in place when they are not there, and the service
accepts both shapes. tests/sink/test_kafka_records.py proves the parser equal to kafka-python's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kafka
import structlog
from kafka.errors import CorruptRecordError

log = structlog.get_logger(__name__)

SUPPORTED_VERSION = "3.0.12"


class RecordRun:
    """The records of one Kafka record batch at or after the fetch position, as two lists."""

    __slots__ = ("offset", "offsets", "values")

    def __init__(self, offsets: list[int], values: list[bytes | None]) -> None:
        self.offset = offsets[0]  # what the fetcher's skip predicate reads
        self.offsets = offsets
        self.values = values

    def __len__(self) -> int:
        return len(self.values)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Zigzag varint at ``pos`` (the multi-byte case; single bytes are decoded inline)."""
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint longer than 10 bytes")


def parse_records(buf: bytes, pos: int, count: int, base_offset: int) -> tuple[list[int], list[bytes | None]]:
    """Offsets and values of the ``count`` v2 records in ``buf`` from ``pos`` (uncompressed)."""
    offsets: list[int] = []
    values: list[bytes | None] = []
    add_offset = offsets.append
    add_value = values.append
    size = len(buf)
    try:
        for _ in range(count):
            b = buf[pos]
            if b < 0x80:
                length = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:  # records of 64..8191 bytes: the common case
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                length = (b >> 1) ^ -(b & 1)
                pos += 2
            else:
                length, pos = _varint(buf, pos)
            end = pos + length
            if length < 6 or end > size:
                raise CorruptRecordError(f"invalid record length {length}")
            pos += 1  # attributes (unused)
            while buf[pos] >= 0x80:  # timestamp delta (unused)
                pos += 1
            pos += 1
            b = buf[pos]
            if b < 0x80:
                delta = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:  # offset deltas 64..8191: most records of a large batch
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                delta = (b >> 1) ^ -(b & 1)
                pos += 2
            else:
                delta, pos = _varint(buf, pos)
            b = buf[pos]
            if b < 0x80:
                key_len = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                key_len, pos = _varint(buf, pos)
            if key_len > 0:
                pos += key_len
            b = buf[pos]
            if b < 0x80:
                value_len = (b >> 1) ^ -(b & 1)
                pos += 1
            elif buf[pos + 1] < 0x80:
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                value_len = (b >> 1) ^ -(b & 1)
                pos += 2
            else:
                value_len, pos = _varint(buf, pos)
            if value_len >= 0:
                if pos + value_len >= end:  # the header count follows the value
                    raise CorruptRecordError(f"value of {value_len} bytes overruns its record")
                add_value(buf[pos : pos + value_len])
            else:
                add_value(None)
            add_offset(base_offset + delta)
            pos = end  # headers (unused) end where the record does
    except IndexError as exc:
        raise CorruptRecordError(f"truncated record: {exc}") from exc
    if pos != size:
        raise CorruptRecordError(f"{size - pos} unconsumed bytes after {count} records")
    return offsets, values


def _partition_records_class() -> Any:
    from kafka.consumer.fetcher import Fetcher
    from kafka.record.default_records import DefaultRecordBatch

    base = Fetcher.PartitionRecords

    class FastPartitionRecords(base):  # type: ignore[misc, valid-type]
        """kafka-python's PartitionRecords yielding :class:`RecordRun` objects (one per batch)."""

        def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any,
                            value_deserializer: Any) -> Iterator[RecordRun]:
            batch = records.next_batch()
            last = None
            while batch is not None:
                last = batch
                if self.check_crcs and not batch.validate_crc():
                    raise CorruptRecordError(f"record batch for {tp} at offset {batch.base_offset} failed crc check")
                if isinstance(batch, DefaultRecordBatch):
                    self.leader_epoch = batch.leader_epoch
                    if batch.is_control_batch:  # transaction markers: never returned to consumers
                        self.next_fetch_offset = batch.next_offset
                        batch = records.next_batch()
                        continue
                    batch._maybe_uncompress()
                    buf = bytes(batch._buffer)
                    offsets, values = parse_records(buf, batch._pos, batch.records_count, batch.base_offset)
                else:  # message format v0/v1 (brokers before 0.11): kafka-python parses it
                    pairs = [(r.offset, r.value) for r in batch]
                    offsets, values = [o for o, _ in pairs], [v for _, v in pairs]
                if offsets and offsets[0] < self.fetch_offset:  # fetched from the middle of a batch
                    keep = next((i for i, o in enumerate(offsets) if o >= self.fetch_offset), len(offsets))
                    offsets, values = offsets[keep:], values[keep:]
                if offsets:
                    self.records_read += len(offsets)
                    self.bytes_read += batch.size_in_bytes
                    self.next_fetch_offset = offsets[-1] + 1
                    yield RecordRun(offsets, values)
                batch = records.next_batch()
            if last is not None and last.magic == 2:
                self.next_fetch_offset = last.next_offset
            self.drain()

    return FastPartitionRecords


def install(consumer: Any) -> bool:
    """Make ``consumer`` (the sink's own) return RecordRuns; False (standard records) if unsupported."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    try:
        from kafka.consumer.fetcher import Fetcher
        from kafka.protocol.consumer import IsolationLevel

        supported = (
            kafka.__version__ == SUPPORTED_VERSION
            and fetcher is not None
            and hasattr(Fetcher.PartitionRecords, "_unpack_records")
            and fetcher._isolation_level == IsolationLevel.READ_UNCOMMITTED
        )
    except (ImportError, AttributeError):
        supported = False
    if not supported:
        log.warning("sink.fast_records_unsupported", kafka_python=getattr(kafka, "__version__", "?"))
        return False
    fetcher.PartitionRecords = _partition_records_class()
    return True
