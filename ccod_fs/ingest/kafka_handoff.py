"""kafka-python plumbing of the publisher: producer settings and the batch hand-off.

``BatchHandoff`` appends records straight into kafka-python's accumulator batches (encoding
proven byte-identical to ``send()`` by tests, partitioning identical to ``send()``), which is
what makes the publisher several times faster than one ``send()`` per record. It relies on
kafka-python 3.0.12 internals (pinned); ``BatchHandoff.supported`` turns it off otherwise.
"""

from __future__ import annotations

from typing import Any

import structlog
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import DefaultPartitioner
from kafka.producer.producer_batch import ProducerBatch
from kafka.record.memory_records import MemoryRecordsBuilder
from kafka.record.util import encode_varint

log = structlog.get_logger(__name__)

_FOREVER_MS = 2**31 - 1


def default_compression() -> str | None:
    """lz4 when its package is installed (fast, good on JSON), else none: gzip costs ~half the throughput."""
    from kafka.codec import has_lz4

    return "lz4" if has_lz4() else None


def producer_config(bootstrap: str, client_id: str, **overrides: Any) -> dict[str, Any]:
    """The producer settings the publisher relies on (also used by the raw baseline benchmark)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,  # the most idempotence allows while keeping order
        "linger_ms": 10,
        "batch_size": 256 * 1024,
        "compression_type": default_compression(),
        "retries": float("inf"),
        "delivery_timeout_ms": _FOREVER_MS,  # never fail a batch on time: we bound memory ourselves
        "request_timeout_ms": 30_000,
        "reconnect_backoff_ms": 100,
        "reconnect_backoff_max_ms": 2_000,
        "max_block_ms": 5_000,
        "bootstrap_timeout_ms": 5_000,
    }
    config.update(overrides)
    return config


def _varint(value: int) -> bytes:
    """Kafka's zigzag varint (as ``kafka.record.util.encode_varint``)."""
    out = bytearray()
    encode_varint(value, out.append)
    return bytes(out)


_VARINTS = [_varint(i) for i in range(1 << 14)]
_NULL_LEN = _varint(-1)


def append_record(records: MemoryRecordsBuilder, timestamp_ms: int, key: bytes | None, value: bytes) -> bool:
    """Append one header-less record to an open v2 batch builder; False when it is closed or full.

    Writes the same bytes as ``MemoryRecordsBuilder.append`` (a test holds it to that) with
    table-driven varints and no per-record type checks or metadata object: about 3x cheaper.
    """
    if records._closed:
        return False
    builder = records._builder
    offset = records._next_offset
    first_ts = builder._first_timestamp
    delta = 0 if first_ts is None else timestamp_ms - first_ts
    table = _VARINTS
    vlen = len(value)
    msg = b"".join((
        b"\x00",  # attributes
        table[delta] if 0 <= delta < 16384 else _varint(delta),
        table[offset] if offset < 16384 else _varint(offset),
        _NULL_LEN if key is None else (table[len(key)] if len(key) < 16384 else _varint(len(key))) + key,
        table[vlen] if vlen < 16384 else _varint(vlen),
        value,
        b"\x00",  # header count
    ))
    mlen = len(msg)
    prefix = table[mlen] if mlen < 16384 else _varint(mlen)
    buf = builder._buffer
    if first_ts is None:
        builder._first_timestamp = builder._max_timestamp = timestamp_ms
    elif len(prefix) + mlen + len(buf) > builder._batch_size:
        return False
    elif builder._max_timestamp < timestamp_ms:
        builder._max_timestamp = timestamp_ms
    builder._num_records += 1
    builder._last_offset = offset
    buf += prefix
    buf += msg
    records._next_offset = offset + 1
    return True


class BatchHandoff:
    """Appends records straight into kafka-python's accumulator batches, skipping ``send()``.

    Why: ``KafkaProducer.send`` costs ~40 us of pure Python per record (validation, partitioner,
    size estimate, one future per record), which caps a core near 20k records/s. Here the
    partition of a key is cached, records go into the same ``ProducerBatch`` objects ``send()``
    would fill, and each record is tracked by its batch's future. The sender thread, idempotent
    sequencing, retries and acks are kafka-python's own, unchanged. It relies on internals of
    the pinned kafka-python (3.0.12): ``supported()`` checks them, else the publisher uses
    ``send()``.
    """

    def __init__(self, producer: KafkaProducer) -> None:
        acc = producer._accumulator
        self._producer = producer
        self._acc = acc
        self._batches = acc._batches
        self._tp_lock = acc._tp_lock
        self._incomplete = acc._incomplete
        self._compression = acc.config["compression_attrs"]
        self._batch_size = acc.config["batch_size"]
        self._metadata = producer._metadata
        self._partitioner = producer.config["partitioner"]
        self._partitions: dict[str, tuple[int, dict[bytes, int]]] = {}
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        self.new_batches: list[ProducerBatch] = []
        self.split_error: KafkaError | None = None

    @staticmethod
    def supported(producer: KafkaProducer) -> bool:
        acc = getattr(producer, "_accumulator", None)
        tm = getattr(producer, "_transaction_manager", None)
        return (acc is not None and all(hasattr(acc, a) for a in ("_batches", "_tp_lock", "_incomplete", "config"))
                and acc.config.get("message_version") == 2
                and isinstance(producer.config.get("partitioner"), DefaultPartitioner)
                and not (tm is not None and tm.is_transactional()))

    def partition(self, topic: str, key: bytes | None) -> int:
        """Same partition ``send()`` would pick (murmur2 of the key, as the Java client), cached per key."""
        count_cache = self._partitions.get(topic)
        if key is not None and count_cache is not None:
            cached = count_cache[1].get(key)
            if cached is not None:
                return cached
        part = self._partitioner.partition(topic, key, key, None, None, self._metadata)
        if key is not None:
            if count_cache is None or len(count_cache[1]) > 100_000:
                count_cache = self._partitions[topic] = (len(self._metadata.partitions_for_topic(topic) or ()), {})
            count_cache[1][key] = part
        return int(part)

    def forget_partitions(self) -> None:
        """Drop cached key -> partition choices (the topic's partition count changed)."""
        self._partitions.clear()

    def append(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> Any:
        """Append one record; returns the future of the batch holding it."""
        part = self.partition(topic, key)
        tp = self._tps.get((topic, part))
        if tp is None:
            tp = self._tps[(topic, part)] = TopicPartition(topic, part)
        with self._tp_lock(tp):
            dq = self._batches[tp]
            if dq:
                batch = dq[-1]
                if append_record(batch.records, timestamp_ms, key, value):
                    return batch.produce_future
            records = MemoryRecordsBuilder(2, self._compression, self._batch_size)
            batch = ProducerBatch(tp, records)
            batch._record_futures = _SplitAlarm(self, batch)
            append_record(records, timestamp_ms, key, value)
            dq.append(batch)
            self._incomplete.add(batch)
        self.new_batches.append(batch)
        return batch.produce_future

    def wake_sender(self) -> None:
        if self.new_batches:
            self.new_batches.clear()
            self._producer._sender.wakeup()


class _SplitAlarm:
    """Stands in for a batch's per-record futures, which only a batch split reads.

    kafka-python splits a batch the broker finds too large (topic ``max.message.bytes`` below
    ``batch_size``) and moves the records' futures to the new batches; the batch future this
    handoff tracks would then never complete. Raising the alarm makes the publisher rewind and
    continue with ``send()``, which splits correctly.
    """

    def __init__(self, handoff: BatchHandoff, batch: ProducerBatch) -> None:
        self._handoff = handoff
        self._batch = batch

    def __len__(self) -> int:
        return int(self._batch.record_count)

    def __getitem__(self, index: int) -> _SplitAlarm:
        return self

    def append(self, item: object) -> None:
        pass

    def rebind(self, new_produce_future: Any, new_batch_index: int) -> None:
        if self._handoff.split_error is None:
            self._handoff.split_error = KafkaError(
                f"batch for {self._batch.topic_partition} split by the broker (record batch too large): "
                "topic max.message.bytes is below the producer batch_size")


def batch_outcome(future: Any) -> BaseException | None:
    """Error of a completed batch future (kafka-python completes failed batches via ``success``)."""
    if future.failed():
        return future.exception
    record_errors = future.value[2]
    return None if record_errors is None else record_errors(0)
