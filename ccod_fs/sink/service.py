"""Kafka -> ClickHouse sink service: consume, batch, validate, insert, then commit.

At least once: offsets are committed only after every table of the batch is inserted and
the batch's dead letters are acknowledged by Kafka. When ClickHouse is down the consumer
pauses its partitions and retries the same batch with exponential backoff (tenacity),
polling while paused so the group does not evict it: nothing is dropped, nothing crash-loops.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata, TopicPartition
from tenacity import Retrying, retry_if_exception_type, stop_never, wait_exponential

from ccod_fs.clickhouse.client import ClickHouseClient, connect
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.sink.decode import decode
from ccod_fs.sink.fastcheck import Record
from ccod_fs.sink.rows import derive_rows_from_records
from ccod_fs.sink.writer import Sink, batch_token

log = structlog.get_logger(__name__)


class Stopped(Exception):
    """Stop was requested while a batch was still unwritten: exit without committing it."""


class SinkService:
    def __init__(self, consumer: Any, dlq_producer: Any, sink: Sink, *, dead_letter_topic: str, origin: str,
                 batch_max_events: int = 50_000, batch_max_age_s: float = 0.5,
                 retry_max_backoff_s: float = 30.0) -> None:
        self.consumer = consumer
        self.dlq = dlq_producer
        self.sink = sink
        self.dead_letter_topic = dead_letter_topic
        self.origin = origin
        self.batch_max_events = batch_max_events
        self.batch_max_age_s = batch_max_age_s
        self.retry_max_backoff_s = retry_max_backoff_s
        self.stop_event = threading.Event()
        self.stats = {"events": 0, "dead_letters": 0, "batches": 0, "retries": 0}
        self._reset()

    def _reset(self) -> None:
        self._events: list[Record] = []
        self._dead: list[DeadLetter] = []
        self._ranges: dict[tuple[str, int], list[int]] = {}
        self._started = 0.0

    def stop(self) -> None:
        self.stop_event.set()

    # ---- consuming -----------------------------------------------------------------------------

    def _take(self, records: dict[TopicPartition, list[Any]]) -> None:
        for tp, recs in records.items():
            if not recs:
                continue
            if not self._started:
                self._started = time.monotonic()
            key = (tp.topic, tp.partition)
            rng = self._ranges.setdefault(key, [recs[0].offset, recs[0].offset])
            rng[1] = recs[-1].offset
            for rec in recs:
                item = decode(rec.value, origin=self.origin, topic=tp.topic, partition=tp.partition,
                              offset=rec.offset)
                if isinstance(item, DeadLetter):
                    self._dead.append(item)
                else:
                    self._events.append(item)

    def _pending(self) -> int:
        return len(self._events) + len(self._dead)

    def run(self) -> None:
        log.info("sink.started", origin=self.origin, batch_max_events=self.batch_max_events,
                 batch_max_age_s=self.batch_max_age_s)
        try:
            while not self.stop_event.is_set():
                age = time.monotonic() - self._started if self._started else 0.0
                timeout_ms = max(1, int((self.batch_max_age_s - age) * 1000)) if self._started else 200
                room = max(1, self.batch_max_events - self._pending())
                self._take(self.consumer.poll(timeout_ms=timeout_ms, max_records=room))
                age = time.monotonic() - self._started if self._started else 0.0
                if self._pending() >= self.batch_max_events or (self._started and age >= self.batch_max_age_s):
                    self.flush()
            if self._ranges:
                self.flush()
        except Stopped:
            log.warning("sink.stopped_with_unwritten_batch", events=len(self._events))
        log.info("sink.stopped", **self.stats)

    # ---- flushing --------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the batch (retrying while ClickHouse is away), then dead letters, then commit."""
        if not self._ranges:
            return
        token = batch_token((t, p, a, b) for (t, p), (a, b) in self._ranges.items())
        rows = derive_rows_from_records(self._events)
        self._with_retry("clickhouse_insert", lambda: self.sink.write_rows(rows, token))
        if self._dead:
            self._with_retry("dead_letter_produce", self._send_dead_letters)
        offsets = {TopicPartition(t, p): OffsetAndMetadata(b + 1, "", -1) for (t, p), (_a, b) in self._ranges.items()}
        try:
            self.consumer.commit(offsets)
        except CommitFailedError as exc:
            # partitions moved to another member: it will re-read these offsets; re-delivery is harmless
            log.warning("sink.commit_failed_rebalanced", error=str(exc))
        self.stats["events"] += len(self._events)
        self.stats["dead_letters"] += len(self._dead)
        self.stats["batches"] += 1
        log.debug("sink.batch_committed", events=len(self._events), dead_letters=len(self._dead),
                  partitions=len(self._ranges), token=token)
        self._reset()

    def _send_dead_letters(self) -> None:
        futures = [
            self.dlq.send(self.dead_letter_topic, key=d.origin.encode(), value=d.to_json()) for d in self._dead
        ]
        self.dlq.flush(timeout=30)
        for fut in futures:
            fut.get(timeout=30)
        for d in self._dead:
            log.warning("sink.dead_letter", reason=d.reason, topic=d.topic, partition=d.partition, offset=d.offset)

    def _with_retry(self, what: str, action: Callable[[], object]) -> None:
        paused = False

        def before_sleep(state: Any) -> None:
            nonlocal paused
            self.stats["retries"] += 1
            if not paused:
                self.consumer.pause(*self.consumer.assignment())
                paused = True
            log.warning("sink.retrying", what=what, attempt=state.attempt_number,
                        error=repr(state.outcome.exception())[:300])

        def sleep_polling(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if self.stop_event.is_set():
                    raise Stopped
                self.consumer.poll(timeout_ms=100)  # paused: returns nothing, keeps membership alive

        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.2, max=self.retry_max_backoff_s),
            stop=stop_never,
            before_sleep=before_sleep,
            sleep=sleep_polling,
            reraise=True,
        )
        try:
            retrying(action)
        finally:
            if paused:
                self.consumer.resume(*self.consumer.paused())
                log.info("sink.resumed", what=what)


# ---- composition root ----------------------------------------------------------------------------


def build_consumer(kafka: Any, group_id: str, **overrides: Any) -> KafkaConsumer:
    config: dict[str, Any] = dict(
        bootstrap_servers=kafka.bootstrap.split(","),
        group_id=group_id,
        client_id=f"{kafka.client_id}-sink",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=50_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_min_bytes=1,
        fetch_max_wait_ms=100,
    )
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    consumer.subscribe([kafka.events_topic])
    return consumer


def build_dlq_producer(kafka: Any) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=kafka.bootstrap.split(","), client_id=f"{kafka.client_id}-sink-dlq",
                         acks="all", linger_ms=5)


def _log_connect_retry(state: Any) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning("clickhouse.connect_retry", attempt=state.attempt_number, error=repr(error)[:200])


def open_clickhouse(settings: Any) -> ClickHouseClient:
    """Connect (retrying while the server is not up yet) and make sure the schema is current."""
    client: ClickHouseClient | None = None
    for attempt in Retrying(wait=wait_exponential(multiplier=0.5, max=30), stop=stop_never, reraise=True,
                            before_sleep=_log_connect_retry):
        with attempt:
            client = connect(settings)
            migrate(client)
    assert client is not None
    return client


def run_sink(settings: Any) -> None:
    """``ccod-fs sink``: runs until SIGTERM/SIGINT, then finishes and commits the current batch."""
    client = open_clickhouse(settings.clickhouse)
    consumer = build_consumer(settings.kafka, settings.group_id)
    producer = build_dlq_producer(settings.kafka)
    service = SinkService(consumer, producer, Sink(client), dead_letter_topic=settings.kafka.dead_letter_topic,
                          origin=settings.group_id, batch_max_events=settings.batch_max_events,
                          batch_max_age_s=settings.batch_max_age_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    try:
        service.run()
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
        client.close()


def run_migrate(settings: Any) -> None:
    """``ccod-fs migrate``: apply pending migrations and exit."""
    client = connect(settings.clickhouse)
    try:
        applied = migrate(client)
        log.info("clickhouse.migrated", applied=applied, dialect=client.dialect.value, database=client.database)
    finally:
        client.close()
