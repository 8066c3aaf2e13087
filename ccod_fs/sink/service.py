"""Kafka -> ClickHouse sink service: consume, batch, validate, insert, then commit.

At least once: offsets (the next offset of each partition) are committed synchronously only
after every table of the batch is inserted and the batch's dead letters are acknowledged by
Kafka, batch after batch in order. When ClickHouse is down the writer retries the same batch with
exponential backoff (tenacity) while this thread keeps calling ``consume`` (the assignment paused
once a batch waits) so rebalances are served and ``max.poll.interval.ms`` never runs out:
nothing is dropped, nothing crash-loops.

Rebalances: a partition revoked (or lost) while a batch holding its records is unwritten or
uncommitted is not committed by us; its records are read again by its next owner (duplicates are
harmless: insert deduplication tokens and ReplacingMergeTree tables), never lost.

Pipelined: the insert of batch N runs in a writer thread while this thread consumes and decodes
batch N+1. The driver spends part of an insert waiting on the server with the GIL released,
and the server's own work (on the other core) overlaps with our decoding. At most one batch is
in the writer at a time; commits and rebalance callbacks (served inside ``consume``) stay on the
consumer's thread, so the bookkeeping they share needs no lock.
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
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition
from tenacity import Retrying, retry_if_exception_type, stop_never, wait_exponential

from ccod_fs.clickhouse.client import ClickHouseClient, connect
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.sink.builders import decoder_name, new_builder
from ccod_fs.sink.dead_letters import PendingDeadLetters
from ccod_fs.sink.kafka_client import SinkConsumer, build_consumer, build_dlq_producer
from ccod_fs.sink.rows import RowBatch
from ccod_fs.sink.writer import Sink, batch_token

log = structlog.get_logger(__name__)

__all__ = ["SinkService", "build_consumer", "build_dlq_producer", "run_migrate", "run_sink", "tune_gc"]

SERVE_AFTER_S = 1.0  # a writer busier than this: keep consuming (rebalances, max.poll.interval.ms)
SERVE_POLL_S = 0.1  # one consume call while waiting for the writer or a retry
COMMIT_RETRY_S = 60.0  # how long a written batch's commit is retried (rebalance, coordinator moving)
_COMMIT_RETRIED = (KafkaError.REBALANCE_IN_PROGRESS,)

Partition = tuple[str, int]


class Stopped(Exception):
    """Stop was requested while a batch was still unwritten: exit without committing it."""


class _Batch:
    """One batch being filled: decoded rows, dead letters and the offset range per partition."""

    __slots__ = ("builder", "dead", "ranges", "revoked", "started")

    def __init__(self, decoder: str) -> None:
        self.builder = new_builder(decoder)
        self.dead: list[DeadLetter] = []
        self.ranges: dict[Partition, list[int]] = {}
        self.revoked: set[Partition] = set()  # partitions given up while filling: not committed
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
        # the token covers every row inserted (a re-delivered batch of the same ranges dedups)
        self.token = batch_token((t, p, a, b) for (t, p), (a, b) in batch.ranges.items())
        self.offsets: dict[Partition, int] = {tp: b + 1 for tp, (_a, b) in batch.ranges.items()
                                              if tp not in batch.revoked}


class SinkService:
    def __init__(self, consumer: SinkConsumer, dlq_producer: Any, sink: Sink, *, dead_letter_topic: str,
                 origin: str, batch_max_events: int = 50_000, batch_max_age_s: float = 0.5,
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
        # partitions_*: partitions given up by rebalances (revoked) or by a lost membership (lost):
        # how often this member's uncommitted work was left to the partitions' next owner
        self.stats = {"events": 0, "dead_letters": 0, "batches": 0, "retries": 0, "partitions_revoked": 0,
                      "partitions_lost": 0}
        self.decoder = decoder_name()  # native (ccod_fs_native) or python
        self._batch = _Batch(self.decoder)
        self._open: list[_Sealed] = []  # sealed, not committed yet (oldest first)
        self._in_flight: tuple[_Sealed, Future[None]] | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._retrying = threading.Event()
        self._carry: list[Message] = []  # consumed while waiting, not decoded yet (consume order)
        self._paused = False
        self._repause = False  # partitions were assigned while paused
        # set once the group gave this member partitions: other threads wait on it (the librdkafka
        # consumer itself must not be called from another thread while consume() runs)
        self.assigned = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    # ---- rebalances (served inside consume(), on this thread) --------------------------------------

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._repause = self._paused
        if partitions:
            self.assigned.set()
        log.info("sink.assigned", partitions=sorted((tp.topic, tp.partition) for tp in partitions))

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._give_up(partitions, lost=False)

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._give_up(partitions, lost=True)

    def _give_up(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        """Never commit these partitions for what we hold: their next owner reads those records again."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        if not gone:
            return
        for sealed in self._open:
            for tp in gone:
                sealed.offsets.pop(tp, None)
        self._batch.revoked |= gone & self._batch.ranges.keys()  # read again after a re-assign: committed
        if self._carry:
            self._carry = [m for m in self._carry if (m.topic(), m.partition()) not in gone]
        self.stats["partitions_lost" if lost else "partitions_revoked"] += len(gone)
        log.info("sink.partitions_lost" if lost else "sink.revoked", partitions=sorted(gone))

    # ---- consuming -----------------------------------------------------------------------------

    def _take(self, messages: list[Message]) -> None:
        """Decode consumed messages into the current batch, one ``add_run`` per partition run.

        ``consume`` hands out messages of one partition in fetch-sized runs, in offset order.
        """
        values: list[bytes | None] = []
        offsets: list[Any] = []  # ints: only messages without error() are taken
        topic: Any = None
        partition: Any = None
        for m in messages:
            if m.error() is not None:
                self._consume_error(m)
                continue
            t = m.topic()
            p = m.partition()
            if p != partition or t != topic:
                if values:
                    self._add_run(topic, partition, values, offsets)
                    values, offsets = [], []
                topic, partition = t, p
            values.append(m.value())
            offsets.append(m.offset())
        if values:
            self._add_run(topic, partition, values, offsets)

    def _add_run(self, topic: str, partition: int, values: list[bytes | None], offsets: list[int]) -> None:
        batch = self._batch
        if not batch.started:
            batch.started = time.monotonic()
        batch.builder.add_run(values, offsets, dead=batch.dead, origin=self.origin, topic=topic,
                              partition=partition)
        first, last = offsets[0], offsets[-1]
        rng = batch.ranges.setdefault((topic, partition), [first, last])
        if last > rng[1]:
            rng[1] = last
        if first < rng[0]:  # re-read after a rebalance gave the partition back: the range covers both
            rng[0] = first

    def _consume_error(self, message: Message) -> None:
        error = message.error()
        assert error is not None
        if error.code() == KafkaError._PARTITION_EOF:
            return
        log.warning("sink.consume_error", code=error.name(), error=error.str(), topic=message.topic(),
                    partition=message.partition(), fatal=error.fatal())

    def _consume(self, num_messages: int, timeout_s: float) -> list[Message]:
        """One ``consume``; a client-level error is logged and yields nothing (fatal ones end the run)."""
        try:
            return self.consumer.consume(num_messages=num_messages, timeout=timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.fatal():
                raise
            log.warning("sink.consume_failed", error=str(exc))
            self.stop_event.wait(timeout_s)
            return []

    def _poll(self, timeout_s: float) -> None:
        """Fill the batch: first from messages carried over, else from one ``consume``.

        Never past ``batch_max_events``: ``consume`` returns at most what is asked for (it waits
        until it has that many or the timeout ran out).
        """
        room = max(1, self.batch_max_events - self._batch.pending())
        if self._carry:
            taken, self._carry = self._carry[:room], self._carry[room:]
            self._take(taken)
            return
        self._take(self._consume(room, timeout_s))

    def _serve(self, timeout_s: float) -> None:
        """Consume while waiting (writer busy, retry backoff, commit retry): keeps the group served.

        What arrives waits in the carry; once it holds a batch the assignment is paused, so a long
        ClickHouse outage holds at most that much. librdkafka re-fetches a paused partition from
        the position after the last message it returned, so nothing is skipped on resume.
        """
        room = self.batch_max_events - len(self._carry)
        if room <= 0 and not self._paused:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True
        self._carry.extend(self._consume(max(1, room), timeout_s))
        if self._repause:  # assigned while paused: those partitions start paused too
            self._repause = False
            self.consumer.pause(self.consumer.assignment())

    def _resume(self) -> None:
        if self._paused:
            self._paused = self._repause = False
            self.consumer.resume(self.consumer.assignment())

    def run(self) -> None:
        log.info("sink.started", origin=self.origin, decoder=self.decoder, batch_max_events=self.batch_max_events,
                 batch_max_age_s=self.batch_max_age_s, pipelined=self.pipelined)
        self.consumer.subscribe(self.consumer.topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        if self.pipelined:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sink-writer-{self.origin}")
        try:
            while not self.stop_event.is_set():
                started = self._batch.started
                age = time.monotonic() - started if started else 0.0
                self._poll(max(0.001, self.batch_max_age_s - age) if started else 0.2)
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
            self._open.append(sealed)
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
        """Wait for the writer; once it takes long (or retries), keep consuming meanwhile.

        librdkafka heartbeats from its own thread, so a usual insert is simply waited out; a long
        one (a ClickHouse outage) must still call ``consume`` to serve rebalances and to stay
        within ``max.poll.interval.ms``.
        """
        retried = False
        since = time.monotonic()
        try:
            while True:
                try:
                    future.result(timeout=0 if retried else 0.1)
                    return
                except FutureTimeout:
                    pass
                retried = retried or self._retrying.is_set()
                if retried or time.monotonic() - since >= SERVE_AFTER_S:
                    self._serve(SERVE_POLL_S)
        finally:
            if self._paused:
                self._resume()
                if retried:
                    log.info("sink.resumed")

    def _commit(self, sealed: _Sealed) -> None:
        """Commit a written batch's offsets (synchronously); retried while the group rebalances.

        Partitions revoked meanwhile are left out (``_give_up``); a commit refused for good means
        the partitions moved: their next owner re-reads them (re-delivery is harmless).
        """
        deadline = time.monotonic() + COMMIT_RETRY_S
        try:
            while sealed.offsets:
                offsets = [TopicPartition(t, p, offset) for (t, p), offset in sealed.offsets.items()]
                try:
                    result = self.consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else None
                    retry = isinstance(error, KafkaError) and (error.code() in _COMMIT_RETRIED or error.retriable())
                    if retry and time.monotonic() < deadline and not self.stop_event.is_set():
                        self._serve(SERVE_POLL_S)  # lets the rebalance finish
                        continue
                    log.warning("sink.commit_failed", error=str(exc), partitions=len(offsets))
                    break
                for tp in result or ():
                    if tp.error is not None:
                        log.warning("sink.commit_failed_partition", topic=tp.topic, partition=tp.partition,
                                    error=str(tp.error))
                break
        finally:
            self._resume()
            self._open.remove(sealed)
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
            letters = PendingDeadLetters(self.dlq, self.dead_letter_topic, sealed.dead)
            self._with_retry("dead_letter_produce", letters.send)
            for d in sealed.dead:
                log.warning("sink.dead_letter", reason=d.reason, topic=d.topic, partition=d.partition,
                            offset=d.offset)

    def _with_retry(self, what: str, action: Callable[[], object]) -> None:
        def before_sleep(state: Any) -> None:
            self.stats["retries"] += 1
            self._retrying.set()
            log.warning("sink.retrying", what=what, attempt=state.attempt_number,
                        error=repr(state.outcome.exception())[:300])

        def sleep(seconds: float) -> None:
            if self._writer is not None:  # the consumer's thread keeps consuming (see _wait)
                if self.stop_event.wait(seconds):
                    raise Stopped
                return
            # writing on the consumer's own thread: sleep by consuming (group membership)
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                if self.stop_event.is_set():
                    raise Stopped
                self._serve(min(SERVE_POLL_S, left))

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
            if self._writer is None and self._paused:
                self._resume()
                log.info("sink.resumed", what=what)


# ---- composition root ----------------------------------------------------------------------------


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
        consumer.close()  # leaves the group; commits nothing (enable.auto.commit=false)
        producer.flush(10)
        client.close()


def run_migrate(settings: Any) -> None:
    """``ccod-fs migrate``: apply pending migrations and exit."""
    client = connect(settings.clickhouse)
    try:
        applied = migrate(client)
        log.info("clickhouse.migrated", applied=applied, dialect=client.dialect.value, database=client.database)
    finally:
        client.close()
