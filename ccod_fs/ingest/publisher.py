"""Durable Kafka publisher: spool first, Kafka second, nothing lost, per-key order kept.

Why this shape:

- Every record is appended to the write-ahead ``Spool`` before Kafka sees it, so neither a Kafka
  outage nor a crash of this process loses an accepted event; the ack checkpoint only moves over
  records Kafka confirmed (acks=all, idempotent producer), so a restart replays exactly the
  unconfirmed tail (duplicates possible, consumers dedupe by event id; losses not).
- Records are handed to the producer strictly in spool order by one cursor (``send_pos``). The
  producer never gives up on a batch by itself (``delivery_timeout_ms`` is effectively infinite,
  retries are infinite and idempotent), so while Kafka is down it keeps what it has and retries
  in order; we stop feeding it when ``max_inflight_bytes`` is reached and the rest waits on disk.
  That bounds memory and keeps per-key (per-partition) order across outages without any resend.
- Only a fatal producer error breaks that chain: the producer is discarded (and given time to
  finish what it has) before a new one is built and the cursor rewinds to the first unconfirmed
  record (duplicates possible, losses not).
- Nothing here blocks the caller for long: producer construction (which needs a reachable
  broker) and fdatasync run on helper threads; ``publish`` only spools and hands over.
- Records are handed over in batches (``BatchHandoff``) instead of one ``send()`` each, which is
  what makes the publisher several times faster than kafka-python's own per-record path.

Durability points: a record is safe from a crash of this process once ``poll()`` (or ``flush()``)
returned after its ``publish()``, and from a machine crash one ``fsync_interval_s`` later;
``flush()`` returning True means Kafka has it.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.util import ensure_valid_topic_name

from ccod_fs.ingest.kafka_handoff import BatchHandoff, batch_outcome, producer_config
from ccod_fs.ingest.spool import Spool, SpoolReader

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PublisherStats:
    published: int
    acked: int
    spooled_unacked: int
    replayed: int
    kafka_up: bool
    last_error: str | None
    spool_bytes: int = 0


class DurablePublisher:
    """Spool-backed Kafka publisher for one single-threaded caller (see module docstring)."""

    def __init__(self, *, bootstrap: str, spool_dir: Path, client_id: str, fsync_interval_s: float = 0.05,
                 max_inflight_bytes: int = 32 * 1024 * 1024, max_cached_bytes: int = 16 * 1024 * 1024,
                 stall_after_s: float = 5.0, segment_bytes: int = 64 * 1024 * 1024,
                 handoff_records: int = 64, poll_budget: int = 5000, fast_handoff: bool = True,
                 **producer_overrides: Any) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.fsync_interval_s = fsync_interval_s
        self.checkpoint_interval_s = max(fsync_interval_s, 0.2)
        self.max_inflight_bytes = max_inflight_bytes
        self.max_cached_bytes = max_cached_bytes
        self.stall_after_s = stall_after_s
        self.handoff_records = handoff_records
        self.poll_budget = poll_budget  # records handed over per poll: bounds one poll's pause in a replay
        self.fast_handoff = fast_handoff
        self._producer_config = producer_config(bootstrap, client_id, **producer_overrides)
        self._spool = Spool(Path(spool_dir), segment_bytes=segment_bytes)
        self._producer: KafkaProducer | None = None
        self._handoff: BatchHandoff | None = None
        self._handoff_producer: KafkaProducer | None = None
        self._max_record_bytes = int(self._producer_config.get("max_request_size", 1_048_576)) - 1024
        # records handed to the producer, in seq order: (seq, future, size)
        self._inflight: deque[tuple[int, Any, int]] = deque()
        self._inflight_bytes = 0
        self._send_pos = 0  # next seq to hand to the producer
        self._acked_pos = 0  # every seq below is confirmed by Kafka
        # records not yet handed over, kept in memory while they fit; else read back from the spool
        self._cache: deque[tuple[int, str, bytes | None, bytes]] = deque()
        self._cache_bytes = 0
        self._cache_valid = True
        self._reader: SpoolReader | None = None
        self._pushback: list[tuple[int, str, bytes | None, bytes]] = []  # read from disk, not yet handed over
        self._known_topics: set[str] = set()  # metadata known to the current producer
        self._valid_topics: set[str] = set()  # names checked at publish
        self._fatal: BaseException | None = None
        self._generation = 0  # bumped whenever the producer is discarded
        self._published = 0
        self._acked = 0
        self._replayed = 0
        self._kafka_up = False
        self._last_error: str | None = None
        self._last_progress = time.monotonic()
        self._last_sync = 0.0
        self._last_commit = 0.0
        self._committed = 0
        self._started = False
        self._closing = threading.Event()
        self._want_producer = threading.Event()
        self._retired: list[KafkaProducer] = []
        self._connector: threading.Thread | None = None

    # -- API ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the spool (replaying un-acked records first, in order) and start connecting to Kafka."""
        self._spool.open()
        self._acked_pos = self._committed = self._send_pos = self._spool.acked_seq
        self._cache_valid = self._send_pos == self._spool.next_seq
        self._started = True
        if self._spool.unacked:
            log.info("publisher.replay_pending", records=self._spool.unacked, from_seq=self._send_pos)
        self._connector = threading.Thread(target=self._connect_loop, name=f"{self.client_id}-connect", daemon=True)
        self._connector.start()
        self._want_producer.set()

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Spool the record and hand it to Kafka soon; never waits for Kafka.

        Records reach the producer in groups of ``handoff_records`` or at the next ``poll``.
        Raises ``ValueError`` for a record Kafka could never take (too large, wrong types):
        that is a caller bug to dead-letter, and it is refused before it enters the spool.
        """
        if type(value) is not bytes or (key is not None and type(key) is not bytes):
            raise ValueError("key and value must be bytes")
        if len(value) + (len(key) if key else 0) > self._max_record_bytes:
            raise ValueError(f"record of {len(value)} bytes exceeds Kafka's max_request_size")
        if topic not in self._valid_topics:
            try:
                ensure_valid_topic_name(topic)
            except TypeError as exc:
                raise ValueError(str(exc)) from exc
            self._valid_topics.add(topic)
        seq = self._spool.append(topic, key, value)
        self._published += 1
        if self._cache_valid:
            cache = self._cache
            cache.append((seq, topic, key, value))
            self._cache_bytes += len(value)
            if self._cache_bytes > self.max_cached_bytes:
                self._drop_cache()
            elif len(cache) >= self.handoff_records and self._producer is not None:
                self._pump(min(len(cache), self.poll_budget))

    def poll(self) -> None:
        """Housekeeping: reap acks, feed the producer, group fsync, persist the ack checkpoint."""
        self._reap()
        if self._fatal is not None:
            self._recover()
        self._pump(self.poll_budget)
        now = time.monotonic()
        if now - self._last_sync >= self.fsync_interval_s:
            self._spool.request_sync()
            self._last_sync = now
        else:
            self._spool.write_out()
        if self._acked_pos > self._committed and now - self._last_commit >= self.checkpoint_interval_s:
            self._commit()
        self._update_health(now)

    def flush(self, timeout: float | None = None) -> bool:
        """fsync, then wait until everything published so far is acked (True) or ``timeout`` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._spool.sync()
        target = self._spool.next_seq
        while True:
            self.poll()
            if self._acked_pos >= target:
                self._commit()
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            step = 0.1 if remaining is None else min(0.1, remaining)
            producer = self._producer
            if producer is not None and self._inflight:
                try:
                    producer.flush(timeout=step)
                except KafkaError:
                    pass  # timeouts, and kafka-python's own flush trips over split batches; acks decide
            else:
                time.sleep(min(step, 0.01))

    def close(self, timeout: float = 10) -> None:
        """Flush what can be flushed within ``timeout``; un-acked records stay spooled for the next start."""
        if not self._started:
            return
        flushed = self.flush(timeout)
        self._closing.set()
        self._want_producer.set()
        if self._connector is not None:
            self._connector.join(timeout=timeout)
        producer, self._producer = self._producer, None
        for old in [producer, *self._retired]:
            if old is not None:
                old.close(timeout=1 if flushed and old is producer else 0)
        self._retired.clear()
        if self._reader is not None:
            self._reader.close()
        self._commit()
        self._spool.close()
        self._started = False
        log.info("publisher.closed", flushed=flushed, unacked=self._spool.next_seq - self._acked_pos)

    @property
    def stats(self) -> PublisherStats:
        return PublisherStats(
            published=self._published, acked=self._acked,
            spooled_unacked=self._spool.next_seq - self._acked_pos, replayed=self._replayed,
            kafka_up=self._kafka_up, last_error=self._last_error, spool_bytes=self._spool.size_bytes)

    # -- internals ---------------------------------------------------------------------------
    def _pump(self, budget: int) -> None:
        """Hand records to the producer in seq order while the in-flight window has room."""
        producer = self._producer
        if producer is None:
            return
        if self._handoff_producer is not producer:
            self._handoff_producer = producer
            self._handoff = BatchHandoff(producer) if self.fast_handoff and BatchHandoff.supported(producer) else None
            log.info("publisher.handoff", mode="batch" if self._handoff else "send")
        handoff = self._handoff
        timestamp_ms = int(time.time() * 1000)
        end = self._spool.next_seq
        inflight = self._inflight
        try:
            self._pump_records(producer, handoff, budget, end, timestamp_ms, inflight)
        finally:
            if handoff is not None:
                for batch in handoff.new_batches:
                    batch.produce_future.add_both(self._on_batch_done, self._generation)
                handoff.wake_sender()

    def _pump_records(self, producer: KafkaProducer, handoff: BatchHandoff | None, budget: int, end: int,
                      timestamp_ms: int, inflight: deque[tuple[int, Any, int]]) -> None:
        while budget > 0 and self._send_pos < end and self._inflight_bytes < self.max_inflight_bytes:
            if self._cache_valid:
                batch = [self._cache.popleft() for _ in range(min(budget, len(self._cache), 4096))]
                from_disk = False
            elif self._pushback:
                batch, self._pushback = self._pushback, []
                from_disk = True
            else:
                if self._reader is None:
                    self._reader = SpoolReader(self._spool, self._send_pos)
                batch = [(r.seq, r.topic, r.key, r.value) for r in self._reader.take(min(budget, 2000))]
                from_disk = True
            if not batch:
                break
            for index, (seq, topic, key, value) in enumerate(batch):
                if self._inflight_bytes >= self.max_inflight_bytes or (
                        topic not in self._known_topics and not self._topic_ready(producer, topic)):
                    self._requeue(batch[index:], from_disk)
                    return
                try:
                    if handoff is not None:
                        future = handoff.append(topic, key, value, timestamp_ms)
                    else:
                        future = producer.send(topic, value, key=key)
                        future.add_errback(self._on_error, self._generation)
                except (KafkaError, ValueError, TypeError) as exc:
                    self._note_error("publisher.send_failed", exc)
                    self._requeue(batch[index:], from_disk)
                    self._fatal = exc
                    return
                size = len(value)
                inflight.append((seq, future, size))
                self._inflight_bytes += size
                self._send_pos = seq + 1
                if from_disk:
                    self._replayed += 1
                else:
                    self._cache_bytes -= size
            budget -= len(batch)
            if not self._cache_valid and self._send_pos == self._spool.next_seq:
                self._cache_valid = True  # caught up with the writer: back to the in-memory path
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None

    def _requeue(self, rest: list[tuple[int, str, bytes | None, bytes]], from_disk: bool) -> None:
        """Put records not handed over back in front (cache) or rewind the disk reader."""
        if not rest:
            return
        if from_disk:
            self._pushback = rest + self._pushback
        else:
            self._cache.extendleft(reversed(rest))

    def _topic_ready(self, producer: KafkaProducer, topic: str) -> bool:
        """True when partitions are known; otherwise ask for metadata without blocking the caller."""
        if producer._metadata.partitions_for_topic(topic) is not None:
            self._known_topics.add(topic)
            return True
        producer._sender.add_topic(topic)
        producer._metadata.request_update()
        producer._sender.wakeup()
        return False

    def _reap(self) -> None:
        """Advance the contiguous ack position over completed futures at the head."""
        if (self.fast_handoff and self._handoff is not None and self._handoff.split_error is not None
                and self._fatal is None):
            self.fast_handoff = False  # batches cannot be tracked through splits: send() can
            log.error("publisher.batch_split_fallback_to_send", error=str(self._handoff.split_error))
            self._fatal = self._handoff.split_error
        inflight = self._inflight
        progressed = False
        checked = None  # consecutive records share their batch's future: judge it once
        batch_mode = self._handoff is not None
        while inflight and inflight[0][1].is_done:
            seq, future, size = inflight[0]
            if future is not checked:
                error = batch_outcome(future) if batch_mode else (future.exception if future.failed() else None)
                if error is not None:
                    self._fatal = self._fatal or error
                    break
                checked = future
            inflight.popleft()
            self._inflight_bytes -= size
            self._acked_pos = seq + 1
            self._acked += 1
            progressed = True
        if progressed:
            self._last_progress = time.monotonic()
            if not self._kafka_up:
                self._kafka_up = True
                log.info("publisher.kafka_up", acked_pos=self._acked_pos, backlog=self._spool.next_seq - self._send_pos)

    def _on_batch_done(self, generation: int, result: Any) -> None:
        # I/O thread: a failed batch is completed through success() with per-record errors
        if isinstance(result, BaseException):
            self._on_error(generation, result)
        elif result[2] is not None:
            self._on_error(generation, result[2](0))

    def _on_error(self, generation: int, exc: BaseException) -> None:
        # Called on the producer's I/O thread: only record it; the caller's thread acts in poll().
        # Errors of a producer already discarded (its aborted batches) are not news.
        if generation == self._generation and self._fatal is None:
            self._fatal = exc

    def _recover(self) -> None:
        """A record failed for good: drop the producer, rewind to the first unconfirmed record."""
        exc = self._fatal
        self._fatal = None
        self._note_error("publisher.producer_failed", exc)
        self._reap()
        self._generation += 1
        producer, self._producer = self._producer, None
        self._handoff = self._handoff_producer = None
        if producer is not None:
            self._retired.append(producer)  # closed (given time to flush) before a new one is built
        self._inflight.clear()
        self._inflight_bytes = 0
        self._send_pos = self._acked_pos
        self._drop_cache()
        self._known_topics.clear()
        self._kafka_up = False
        self._fatal = None
        self._want_producer.set()

    def _drop_cache(self) -> None:
        self._cache.clear()
        self._cache_bytes = 0
        self._cache_valid = False
        self._pushback = []
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _commit(self) -> None:
        if self._acked_pos > self._committed or not self._last_commit:
            self._spool.commit(self._acked_pos)
            self._committed = self._acked_pos
        self._last_commit = time.monotonic()

    def _update_health(self, now: float) -> None:
        """Kafka counts as down when records wait (in flight, or unsendable for lack of metadata) without acks."""
        if self._acked_pos == self._spool.next_seq:
            self._last_progress = now
        elif self._kafka_up and now - self._last_progress > self.stall_after_s:
            self._kafka_up = False
            self._last_error = self._last_error or f"no ack for {self.stall_after_s}s"
            log.warning("publisher.kafka_stalled", inflight=len(self._inflight), unacked=self.stats.spooled_unacked)

    def _note_error(self, event: str, exc: BaseException | None) -> None:
        self._last_error = repr(exc)
        self._kafka_up = False
        log.warning(event, error=repr(exc), acked_pos=self._acked_pos, send_pos=self._send_pos)

    def _connect_loop(self) -> None:
        """Build producers off the caller's thread: construction blocks until a broker answers."""
        backoff = 0.2
        while not self._closing.is_set():
            self._want_producer.wait()
            if self._closing.is_set():
                return
            while self._retired:
                old = self._retired.pop()
                try:
                    old.close(timeout=5)
                except Exception as exc:  # a broken producer may fail to close; it is discarded anyway
                    log.warning("publisher.close_failed", error=repr(exc))
            if self._producer is not None:
                self._want_producer.clear()
                continue
            try:
                producer = KafkaProducer(**self._producer_config)
            except Exception as exc:  # NoBrokersAvailable, timeouts, DNS: keep spooling, retry later
                self._last_error = repr(exc)
                log.warning("publisher.connect_failed", bootstrap=self.bootstrap, error=repr(exc),
                            retry_in_s=backoff)
                self._closing.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            self._want_producer.clear()
            if self._closing.is_set():  # close() ran while this one was being built
                producer.close(timeout=0)
                return
            self._producer = producer
            self._kafka_up = True
            log.info("publisher.producer_ready", bootstrap=self.bootstrap, client_id=self.client_id)
