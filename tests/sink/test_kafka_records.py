"""The sink's record-batch parser returns exactly what kafka-python's own parser returns."""

from __future__ import annotations

import random
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from ccod_fs.sink.kafka_records import RecordRun, install, parse_records


def _batch(records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]], base_offset: int = 0,
           compression: int = 0) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=compression, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    rnd = random.Random(5)
    ts = 1_700_000_000_000
    for i, (key, value, headers) in enumerate(records):
        ts += rnd.choice((0, 1, 200, 70_000, 10**9))  # 1- to 5-byte timestamp deltas
        builder.append(i, timestamp=ts, key=key, value=value, headers=headers)
    buf = bytearray(builder.build())
    buf[:8] = base_offset.to_bytes(8, "big")
    return bytes(buf)


def _reference(buf: bytes) -> tuple[list[int], list[bytes | None]]:
    batch = DefaultRecordBatch(buf)
    pairs = [(r.offset, r.value) for r in batch]
    return [o for o, _ in pairs], [v for _, v in pairs]


def _ours(buf: bytes) -> tuple[list[int], list[bytes | None]]:
    batch = DefaultRecordBatch(buf)
    batch._maybe_uncompress()
    return parse_records(bytes(batch._buffer), batch._pos, batch.records_count, batch.base_offset)


def _corpus() -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    rnd = random.Random(11)
    out: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
    for size in (0, 1, 50, 63, 64, 65, 500, 8_000, 8_191, 8_192, 70_000, 1_100_000):
        out.append((b"tenant", rnd.randbytes(size), []))
    out += [(None, b"no key", []), (b"k", None, []), (None, None, []), (b"", b"", [])]
    out += [(b"k", b"with headers", [("trace", b"abc"), ("empty", b"")])]
    return out


@pytest.mark.parametrize("compression", [0, 1])  # none, gzip
def test_parse_equals_kafka_python(compression: int) -> None:
    corpus = _corpus()
    buf = _batch(corpus, base_offset=123_456_789_012, compression=compression)
    offsets, values = _ours(buf)
    assert (offsets, values) == _reference(buf)
    assert values == [v for _k, v, _h in corpus]
    assert offsets == list(range(123_456_789_012, 123_456_789_012 + len(corpus)))


def test_truncated_or_padded_batches_are_corrupt() -> None:
    buf = _batch([(b"k", b"v" * 100, [])] * 3)
    batch = DefaultRecordBatch(buf)
    body = bytes(batch._buffer)
    with pytest.raises(CorruptRecordError):
        parse_records(body[:-5], batch._pos, 3, 0)
    with pytest.raises(CorruptRecordError):
        parse_records(body + b"\x00", batch._pos, 3, 0)
    with pytest.raises(CorruptRecordError):
        parse_records(body, batch._pos, 4, 0)


def test_installed_consumer_returns_runs_from_the_fetch_position(kafka_bootstrap: str) -> None:
    """Through a real broker: runs hold every record once, in order, also when a consumer starts in
    the middle of a producer batch (the broker returns the whole batch; the head is skipped)."""
    topic = f"sink.records.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=200, batch_size=1 << 20)
    values = [f"v{i}".encode() * (i % 90) or b"x" for i in range(3_000)]
    for v in values:
        producer.send(topic, key=b"k", value=v)
    producer.flush()
    producer.close()

    def consume(start: int) -> list[tuple[int, bytes | None]]:
        from kafka.structs import TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="earliest", max_poll_records=10_000)
        assert install(consumer)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, start)
        got: list[tuple[int, bytes | None]] = []
        for _ in range(50):
            for items in consumer.poll(timeout_ms=500).values():
                assert all(type(run) is RecordRun for run in items)
                got += [pair for run in items for pair in zip(run.offsets, run.values, strict=True)]
            if len(got) >= len(values) - start:
                break
        consumer.close()
        return got

    assert consume(0) == list(enumerate(values))
    assert consume(1_234) == list(enumerate(values))[1_234:]
