"""Kafka -> ClickHouse sink service: consume, batch, validate, insert, then commit.

At least once: offsets are committed only after every table of the batch is inserted and
the batch's dead letters are acknowledged by Kafka, batch after batch in order. When
ClickHouse is down the writer retries the same batch with exponential backoff (tenacity) while
the consumer, once the next batch is full, pauses its partitions and keeps polling so the group
does not evict it: nothing is dropped, nothing crash-loops.

Pipelined: the insert of batch N runs in a writer thread while this thread polls and decodes
batch N+1. The driver spends part of an insert waiting on the server with the GIL released,
and the server's own work (on the other core) overlaps with our decoding. At most one batch is
in the writer at a time, and commits stay on the consumer's thread (kafka-python consumers are
not thread-safe).
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata, TopicPartition
from tenacity import Retrying, retry_if_exception_type, stop_never, wait_exponential

from ccod_fs.clickhouse.client import ClickHouseClient, connect
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.sink import kafka_records
from ccod_fs.sink.builders import decoder_name, new_builder
from ccod_fs.sink.kafka_records import RecordRun
from ccod_fs.sink.rows import RowBatch
from ccod_fs.sink.writer import Sink, batch_token

log = structlog.get_logger(__name__)


WAIT_POLLING_AFTER_S = 1.0  # a writer busier than this: pause and poll (group membership, rebalances)
COMMIT_REBALANCE_WAIT_S = 60.0  # how long a written batch's commit waits out a rebalance


class Stopped(Exception):
    """Stop was requested while a batch was still unwritten: exit without committing it."""


class _Batch:
    """One batch being filled: decoded rows, dead letters and the offset range per partition."""

    __slots__ = ("builder", "dead", "ranges", "started")

    def __init__(self, decoder: str) -> None:
        self.builder = new_builder(decoder)
        self.dead: list[DeadLetter] = []
        self.ranges: dict[tuple[str, int], list[int]] = {}
        self.started = 0.0

    def pending(self) -> int:
        return self.builder.events + len(self.dead)


class _Sealed:
    """A batch handed to the writer: what to insert and what to commit once it is in."""

    __slots__ = ("dead", "events", "offsets", "rows", "token")

    def __init__(self, batch: _Batch) -> None:
        self.rows: RowBatch = batch.builder.finish()
        self.dead = batch.dead
        self.events = batch.builder.events
        self.token = batch_token((t, p, a, b) for (t, p), (a, b) in batch.ranges.items())
        self.offsets = {TopicPartition(t, p): OffsetAndMetadata(b + 1, "", -1)
                        for (t, p), (_a, b) in batch.ranges.items()}


class SinkService:
    def __init__(self, consumer: Any, dlq_producer: Any, sink: Sink, *, dead_letter_topic: str, origin: str,
                 batch_max_events: int = 50_000, batch_max_age_s: float = 0.5,
                 retry_max_backoff_s: float = 30.0, pipelined: bool = True) -> None:
        self.consumer = consumer
        self.dlq = dlq_producer
        self.sink = sink
        self.dead_letter_topic = dead_letter_topic
        self.origin = origin
        self.batch_max_events = batch_max_events
        self.batch_max_age_s = batch_max_age_s
        self.retry_max_backoff_s = retry_max_backoff_s
        self.pipelined = pipelined
        self.stop_event = threading.Event()
        self.stats = {"events": 0, "dead_letters": 0, "batches": 0, "retries": 0}
        self.decoder = decoder_name()  # native (ccod_fs_native) or python
        self._batch = _Batch(self.decoder)
        self._in_flight: tuple[_Sealed, Future[None]] | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._retrying = threading.Event()
        self._carry: dict[TopicPartition, list[Any]] = {}
        self._run_size = 1  # largest Kafka record batch seen (records)

    def stop(self) -> None:
        self.stop_event.set()

    # ---- consuming -----------------------------------------------------------------------------

    def _take(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Decode what one poll returned into the current batch (RecordRuns or ConsumerRecords).

        A batch never exceeds ``batch_max_events``: what does not fit is carried, in order, into
        the next batch (a poll returns whole Kafka record batches, so it can overshoot).
        """
        batch = self._batch
        add_run = batch.builder.add_run
        for tp, items in records.items():
            if not items:
                continue
            room = self.batch_max_events - batch.pending()
            if room <= 0:
                self._carry.setdefault(tp, []).extend(items)
                continue
            if not batch.started:
                batch.started = time.monotonic()
            topic, partition = tp.topic, tp.partition
            if type(items[0]) is RecordRun:
                taken: list[RecordRun] = []
                for i, run in enumerate(items):
                    if len(run) > room:
                        if room:
                            taken.append(RecordRun(run.offsets[:room], run.values[:room]))
                        rest = [RecordRun(run.offsets[room:], run.values[room:]), *items[i + 1:]]
                        self._carry.setdefault(tp, []).extend(rest)
                        break
                    taken.append(run)
                    room -= len(run)
                    self._run_size = max(self._run_size, len(run))
                if not taken:
                    continue
                for run in taken:
                    add_run(run.values, run.offsets, dead=batch.dead, origin=self.origin, topic=topic,
                            partition=partition)
                first, last = taken[0].offsets[0], taken[-1].offsets[-1]
            else:  # the standard kafka-python records (fast path not installed)
                if len(items) > room:
                    self._carry.setdefault(tp, []).extend(items[room:])
                    items = items[:room]
                add_run([r.value for r in items], [r.offset for r in items], dead=batch.dead, origin=self.origin,
                        topic=topic, partition=partition)
                first, last = items[0].offset, items[-1].offset
            rng = batch.ranges.setdefault((topic, partition), [first, last])
            rng[1] = last

    def _poll(self, timeout_ms: int) -> None:
        """Fill the batch: first from records carried over, else from one poll."""
        if self._carry:
            carry, self._carry = self._carry, {}
            self._take(carry)
            return
        room = max(1, self.batch_max_events - self._batch.pending())
        # with RecordRuns, max_records counts Kafka record batches
        self._take(self.consumer.poll(timeout_ms=timeout_ms, max_records=max(1, room // self._run_size)))

    def run(self) -> None:
        log.info("sink.started", origin=self.origin, decoder=self.decoder, batch_max_events=self.batch_max_events,
                 batch_max_age_s=self.batch_max_age_s, pipelined=self.pipelined)
        if self.pipelined:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-writer-{self.origin}")
        try:
            while not self.stop_event.is_set():
                started = self._batch.started
                age = time.monotonic() - started if started else 0.0
                timeout_ms = max(1, int((self.batch_max_age_s - age) * 1000)) if started else 200
                self._poll(timeout_ms)
                self._reap(block=False)
                started = self._batch.started
                if self._batch.pending() >= self.batch_max_events or (
                        started and time.monotonic() - started >= self.batch_max_age_s):
                    self.flush(wait=False)
            self.flush()
        except Stopped:
            log.warning("sink.stopped_with_unwritten_batch", events=self._batch.builder.events)
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
        log.info("sink.stopped", **self.stats)

    # ---- flushing --------------------------------------------------------------------------------

    def flush(self, wait: bool = True) -> None:
        """Seal the current batch and hand it to the writer (after committing the one before).

        ``wait``: also wait until it is written and committed (the synchronous form).
        """
        if self._batch.ranges:
            sealed = _Sealed(self._batch)
            self._batch = _Batch(self.decoder)
            self._reap(block=True)
            if self._writer is None:
                self._write(sealed)
                self._commit(sealed)
            else:
                self._in_flight = (sealed, self._writer.submit(self._write, sealed))
        if wait:
            self._reap(block=True)

    def _reap(self, block: bool) -> None:
        """Commit the batch in the writer once it is written; re-raise whatever ended the writer."""
        if self._in_flight is None:
            return
        sealed, future = self._in_flight
        if not future.done():
            if not block:
                return
            self._wait(future)
        self._in_flight = None
        future.result()  # the writer's failure (Stopped, a crash) ends the run here, uncommitted
        self._commit(sealed)

    def _wait(self, future: Future[None]) -> None:
        """Wait for the writer; once it takes long (or retries), pause and poll every 100 ms.

        kafka-python finishes a rebalance only inside ``poll()`` and sends no heartbeats while a
        join is under way: a consumer that sat out a long insert (or a ClickHouse outage) without
        polling was dropped from the group and then waited out rebalances it could not finish.
        """
        paused = False
        retried = False
        since = time.monotonic()
        try:
            while True:
                try:
                    future.result(timeout=0.1)
                    return
                except FutureTimeout:
                    pass
                retried = retried or self._retrying.is_set()
                if not paused and not retried and time.monotonic() - since < WAIT_POLLING_AFTER_S:
                    continue  # a usual insert: the heartbeat thread covers it, no pause/refetch churn
                if not paused:
                    self.consumer.pause(*self.consumer.assignment())
                    paused = True
                # paused: returns nothing, keeps membership; a partition assigned meanwhile
                # is not paused, so whatever it returns is carried (undecoded) to the next batch
                for tp, items in self.consumer.poll(timeout_ms=100, max_records=1).items():
                    self._carry.setdefault(tp, []).extend(items)
        finally:
            if paused:
                self.consumer.resume(*self.consumer.paused())
                if retried:
                    log.info("sink.resumed")

    def _commit(self, sealed: _Sealed) -> None:
        """Commit a written batch; during a rebalance, poll (carrying records) and commit again."""
        deadline = time.monotonic() + COMMIT_REBALANCE_WAIT_S
        while True:
            try:
                self.consumer.commit(sealed.offsets)
                break
            except RebalanceInProgressError as exc:
                if time.monotonic() > deadline or self.stop_event.is_set():
                    log.warning("sink.commit_failed_rebalancing", error=str(exc))
                    break
                # kafka-python finishes the rejoin inside poll(); what it returns waits in the carry
                for tp, items in self.consumer.poll(timeout_ms=100, max_records=1).items():
                    self._carry.setdefault(tp, []).extend(items)
            except CommitFailedError as exc:
                # partitions moved to another member: it will re-read these offsets; re-delivery is harmless
                log.warning("sink.commit_failed_rebalanced", error=str(exc))
                break
        self.stats["events"] += sealed.events
        self.stats["dead_letters"] += len(sealed.dead)
        self.stats["batches"] += 1
        log.debug("sink.batch_committed", events=sealed.events, dead_letters=len(sealed.dead),
                  partitions=len(sealed.offsets), token=sealed.token)

    # ---- the writer (its own thread when pipelined) --------------------------------------------

    def _write(self, sealed: _Sealed) -> None:
        """Insert the batch (retrying while ClickHouse is away), then produce its dead letters."""
        self._with_retry("clickhouse_insert", lambda: self.sink.write_rows(sealed.rows, sealed.token))
        if sealed.dead:
            self._with_retry("dead_letter_produce", lambda: self._send_dead_letters(sealed.dead))

    def _send_dead_letters(self, dead: list[DeadLetter]) -> None:
        futures = [self.dlq.send(self.dead_letter_topic, key=d.origin.encode(), value=d.to_json()) for d in dead]
        self.dlq.flush(timeout=30)
        for fut in futures:
            fut.get(timeout=30)
        for d in dead:
            log.warning("sink.dead_letter", reason=d.reason, topic=d.topic, partition=d.partition, offset=d.offset)

    def _with_retry(self, what: str, action: Callable[[], object]) -> None:
        def before_sleep(state: Any) -> None:
            self.stats["retries"] += 1
            self._retrying.set()
            log.warning("sink.retrying", what=what, attempt=state.attempt_number,
                        error=repr(state.outcome.exception())[:300])

        paused = False

        def sleep(seconds: float) -> None:
            nonlocal paused
            if self._writer is not None:  # the consumer's thread keeps polling (see _wait)
                if self.stop_event.wait(seconds):
                    raise Stopped
                return
            # writing on the consumer's own thread: sleep by polling, paused (group membership)
            if not paused:
                self.consumer.pause(*self.consumer.assignment())
                paused = True
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if self.stop_event.is_set():
                    raise Stopped
                for tp, items in self.consumer.poll(timeout_ms=100, max_records=1).items():
                    self._carry.setdefault(tp, []).extend(items)

        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=0.2, max=self.retry_max_backoff_s),
            stop=stop_never,
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )
        try:
            retrying(action)
        finally:
            self._retrying.clear()
            if paused:
                self.consumer.resume(*self.consumer.paused())
                log.info("sink.resumed", what=what)


# ---- composition root ----------------------------------------------------------------------------


def build_consumer(kafka: Any, group_id: str, **overrides: Any) -> KafkaConsumer:
    """The sink's consumer: manual commits, large fetches, record batches as RecordRuns.

    ``check_crcs=False``, as librdkafka's default (``check.crcs=false``): the broker verifies
    every batch's CRC when it is produced and TCP checksums the transfer, so re-checking each
    fetched batch on the consumer only repeats work; a corrupt value would still fail JSON and
    contract validation and go to the dead-letter topic, never into ClickHouse silently. The
    fetch sizes let one poll return a full batch (50,000 events of ~0.5 kB) across partitions.
    """
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
        check_crcs=False,
    )
    config.update(overrides)
    consumer = KafkaConsumer(**config)
    kafka_records.install(consumer)
    # metadata first: a group leader without the topic's metadata assigns it to nobody
    # (kafka-python's range assignor: "No partition metadata for topic"), and the sink would idle
    consumer.partitions_for_topic(kafka.events_topic)
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


def tune_gc() -> None:
    """Keep CPython's cyclic GC off the hot path of a sink process.

    A batch keeps ~10 container objects per event alive until it is inserted (records, tuples,
    column lists), so with the default thresholds (700 allocations) the collector keeps rescanning
    them and every imported module: cProfile put ~60% of row building and ~30% of decoding into
    collections. Freezing what start-up allocated and collecting young objects every 100,000
    allocations cuts that to noise. The sink's objects are freed by reference counting; cycles
    (rare: exceptions with tracebacks) are still collected, just less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def run_sink(settings: Any) -> None:
    """``ccod-fs sink``: runs until SIGTERM/SIGINT, then finishes and commits the current batch."""
    tune_gc()
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
