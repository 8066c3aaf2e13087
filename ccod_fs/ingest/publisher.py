"""Durable Kafka publisher: spool first, Kafka second, nothing lost, per-key order kept.

Why this shape:

- Every record is appended to the write-ahead ``Spool`` before Kafka sees it, so neither a Kafka
  outage nor a crash of this process loses an accepted event; the ack checkpoint only moves over
  a contiguous prefix of records Kafka confirmed (delivery reports of an acks=all, idempotent
  producer), so a restart replays exactly the unconfirmed tail (duplicates possible, consumers
  dedupe by event id; losses not).
- The producer is librdkafka's (``confluent_kafka.Producer``): its C core batches, compresses and
  retries off the Python thread, about ten times what kafka-python reaches on one core.
- Records are handed to the producer strictly in spool order by one cursor (``send_pos``). The
  producer never gives up on a record by itself (``message.timeout.ms=0``: no expiry; retries
  infinite and idempotent), so while Kafka is down it keeps what it has and retries in order; we
  stop feeding it above ``max_inflight_bytes`` (or when its own queue is full: ``BufferError``)
  and the rest waits on disk. That bounds memory and keeps per-key (per-partition) order across
  outages without any resend.
- Delivery reports arrive per partition in order, across partitions in any order: confirmed
  records beyond the first unconfirmed one are remembered, and the checkpoint moves only over
  the contiguous prefix.
- Only a fatal producer error breaks that chain (``enable.gapless.guarantee`` turns any failure
  that could leave a gap into one): the producer is discarded (after it finished what it had in
  flight, or gave up on it) before a new one is built and the cursor rewinds to the first
  unconfirmed record (duplicates possible, losses not).
- Nothing here blocks the caller for long: building a producer does not wait for a broker,
  retiring one happens across ``poll`` calls, fdatasync runs on the spool's helper thread, the
  reachability probe on its own short-lived thread, and delivery reports are served by ``poll()``
  on the caller's thread.
- Health (``kafka_up``): up while acks flow; down when records wait without acks, when librdkafka
  reports all brokers down, or when a metadata probe fails. The probe (``list_topics`` with a short
  timeout) runs at start, every ``probe_interval_s`` while down and every ``idle_probe_interval_s``
  while idle, so an ingest with nothing to publish reports Kafka promptly, both ways.

Durability points: a record is safe from a crash of this process once ``poll()`` (or ``flush()``)
returned after its ``publish()``, and from a machine crash one ``fsync_interval_s`` later;
``flush()`` returning True means Kafka has it.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer

from ccod_fs.bus.kafka_config import check_client_config, librdkafka_names, resolve_compression
from ccod_fs.bus.kafka_log import LibrdkafkaLog
from ccod_fs.ingest.spool import Spool, SpoolReader

log = structlog.get_logger(__name__)

_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_TOPIC_MAX_LENGTH = 249
_BROKERS_DOWN = (KafkaError._ALL_BROKERS_DOWN,)
_MIN_BATCH_BYTES = 4096


def producer_config(bootstrap: str, client_id: str, *, max_inflight_bytes: int = 32 * 1024 * 1024,
                    compression: str = "auto", client_config: Mapping[str, Any] | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """The librdkafka settings the publisher relies on, and why each.

    ``client_config`` is the operator's (security and the like, checked by
    ``check_client_config``); ``overrides`` take librdkafka names, ``_`` standing for ``.`` so they
    can be keyword arguments (``linger_ms=5`` is ``linger.ms``). The publisher sets ``error_cb``
    and ``logger`` itself.

    - ``enable.idempotence``, ``acks=all``, ``max.in.flight.requests.per.connection=5``: no
      duplicates from retries and per-partition order kept with up to 5 requests in flight
      (the most idempotence allows).
    - ``enable.gapless.guarantee``: a failed batch that would leave a gap in a partition (e.g. the
      broker refuses it as too large) is a fatal error instead of a silent hole; the publisher
      then rewinds to the first unconfirmed record with a new producer.
    - ``message.timeout.ms=0`` (never expire) and ``retries`` at the maximum: the producer keeps
      records through any outage; memory is bounded by the publisher (``max_inflight_bytes``).
    - ``queue.buffering.max.kbytes``: librdkafka's own cap, a second bound twice the publisher's;
      ``queue.buffering.max.messages`` high enough for small records (a full queue raises
      ``BufferError``, which the publisher handles by waiting on disk).
    - ``partitioner=murmur2_random``: the key -> partition mapping of the Java client and of
      kafka-python (the previous publisher), so a spool replayed across the upgrade, and other
      producers of the same keys, land on the same partitions; librdkafka's default differs.
    - ``linger.ms=10``, ``batch.size=256 KiB``: large batches at a latency the ingest does not
      notice; ``compression.type`` see ``resolve_compression``.
    - ``message.max.bytes=1 MiB``: the broker's default record batch limit; larger records are
      refused by ``publish`` before they enter the spool.
    - ``reconnect.backoff*``: reconnect fast after a broker restart without hammering a dead one.
    - ``log.connection.close=false``: idle connections closed by the broker are not errors.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "enable.gapless.guarantee": True,
        "message.timeout.ms": 0,
        "retries": 2_147_483_647,
        "queue.buffering.max.kbytes": max(4096, 2 * max_inflight_bytes // 1024),
        "queue.buffering.max.messages": 1_000_000,
        "partitioner": "murmur2_random",
        "linger.ms": 10,
        "batch.size": 256 * 1024,
        "compression.type": resolve_compression(compression),
        "message.max.bytes": 1_048_576,
        "request.timeout.ms": 30_000,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 2_000,
        "log.connection.close": False,
    }
    config.update(check_client_config(client_config or {}))
    config.update(librdkafka_names(overrides))
    return config


def check_topic(topic: object) -> None:
    """Kafka's topic name rules; ``ValueError`` otherwise (librdkafka only finds out at the broker)."""
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"topic must be a non-empty string, not {topic!r}")
    if topic in (".", "..") or len(topic) > _TOPIC_MAX_LENGTH or not _TOPIC_CHARS.fullmatch(topic):
        raise ValueError(f"illegal topic name {topic!r}: up to {_TOPIC_MAX_LENGTH} of ASCII alphanumerics, "
                         "'.', '_' and '-', not '.' or '..'")


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
    """Spool-backed Kafka publisher for one single-threaded caller (see module docstring).

    ``fast_handoff`` is accepted for compatibility and has no effect (librdkafka's ``produce`` is
    the fast path). ``retire_timeout_s`` bounds how long a failed producer may finish its
    in-flight requests before they are purged; records it did not confirm are sent again.
    ``probe_*`` set the reachability probe behind ``kafka_up`` (see the module docstring).
    """

    def __init__(self, *, bootstrap: str, spool_dir: Path, client_id: str, fsync_interval_s: float = 0.05,
                 max_inflight_bytes: int = 32 * 1024 * 1024, max_cached_bytes: int = 16 * 1024 * 1024,
                 stall_after_s: float = 5.0, segment_bytes: int = 64 * 1024 * 1024,
                 handoff_records: int = 64, poll_budget: int = 5000, fast_handoff: bool = True,
                 retire_timeout_s: float = 10.0, probe_interval_s: float = 1.0,
                 idle_probe_interval_s: float = 5.0, probe_timeout_s: float = 2.0,
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
        self.retire_timeout_s = retire_timeout_s
        self.probe_interval_s = probe_interval_s
        self.idle_probe_interval_s = idle_probe_interval_s
        self.probe_timeout_s = probe_timeout_s
        self._producer_config = producer_config(bootstrap, client_id, max_inflight_bytes=max_inflight_bytes,
                                                **producer_overrides)
        self._batch_bytes = int(self._producer_config["batch.size"])
        self._max_record_bytes = int(self._producer_config["message.max.bytes"]) - 1024
        self._spool = Spool(Path(spool_dir), segment_bytes=segment_bytes)
        self._producer: Producer | None = None
        self._retiring: Producer | None = None  # a failed producer finishing its in-flight requests
        self._retire_deadline = 0.0
        self._retire_purged = False
        self._rebuild_at = 0.0  # no new producer before (backs off a producer failing again at once)
        self._rebuild_backoff = 0.0
        self._producer_born = 0.0
        self._too_large = False  # the broker refused a batch as too large: the next producer batches less
        self._inflight_bytes = 0  # value bytes handed to the producer and not reported back yet
        self._done: set[int] = set()  # confirmed seqs above the first unconfirmed one
        self._send_pos = 0  # next seq to hand to the producer
        self._acked_pos = 0  # every seq below is confirmed by Kafka
        # records not yet handed over, kept in memory while they fit; else read back from the spool
        self._cache: deque[tuple[int, str, bytes | None, bytes]] = deque()
        self._cache_bytes = 0
        self._cache_valid = True
        self._reader: SpoolReader | None = None
        self._pushback: list[tuple[int, str, bytes | None, bytes]] = []  # read from disk, not yet handed over
        self._valid_topics: set[str] = set()  # names checked at publish
        self._fatal: KafkaError | None = None
        self._produce_error: int | None = None  # code of the last refused produce() (logged once)
        self._queue_full = 0  # produce() calls librdkafka refused with BufferError (its queue was full)
        self._generation = 0  # producers built so far
        self._published = 0
        self._acked = 0
        self._delivered = 0  # successful delivery reports (progress, also beyond the contiguous prefix)
        self._delivered_seen = 0
        self._replayed = 0
        self._kafka_up = False
        self._reachable = False  # the last metadata probe was answered (and no all-brokers-down since)
        self._probe: threading.Thread | None = None  # the probe in flight, at most one
        self._probe_result: tuple[str | None] | None = None  # (error or None), set by the probe thread
        self._probe_delivered = 0  # delivery reports seen when the probe started
        self._next_probe = 0.0
        self._last_error: str | None = None
        self._last_progress = time.monotonic()
        self._last_sync = 0.0
        self._last_commit = 0.0
        self._committed = 0
        self._started = False

    # -- API ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the spool (replaying un-acked records first, in order) and build the producer."""
        self._spool.open()
        self._acked_pos = self._committed = self._send_pos = self._spool.acked_seq
        self._cache_valid = self._send_pos == self._spool.next_seq
        self._started = True
        if self._spool.unacked:
            log.info("publisher.replay_pending", records=self._spool.unacked, from_seq=self._send_pos)
        self._producer = self._new_producer()
        self._start_probe(time.monotonic())  # its answer turns kafka_up at the next poll, records or not

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Spool the record and hand it to Kafka soon; never waits for Kafka.

        Records reach the producer in groups of ``handoff_records`` or at the next ``poll``.
        Raises ``ValueError`` for a record Kafka could never take (too large, wrong types, bad
        topic name): that is a caller bug to dead-letter, and it is refused before it enters the spool.
        """
        if type(value) is not bytes or (key is not None and type(key) is not bytes):
            raise ValueError("key and value must be bytes")
        if len(value) + (len(key) if key else 0) > self._max_record_bytes:
            raise ValueError(f"record of {len(value)} bytes exceeds Kafka's message.max.bytes")
        if topic not in self._valid_topics:
            check_topic(topic)
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
        """Housekeeping: serve delivery reports, feed the producer, group fsync, persist the checkpoint."""
        now = time.monotonic()
        if self._producer is not None:
            self._serve(self._producer, 0)
        if self._fatal is not None and self._producer is not None:
            self._retire(now)
        if self._retiring is not None:
            self._drain_retiring(now)
        if self._producer is None and self._retiring is None and self._started and now >= self._rebuild_at:
            self._rebuild(now)
        self._pump(self.poll_budget)
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
            producer = self._producer if self._producer is not None else self._retiring
            if producer is not None and len(producer):
                self._serve(producer, step)  # returns as soon as a report (or an error, a log line) is served
            else:
                time.sleep(min(step, 0.01))

    def close(self, timeout: float = 10) -> None:
        """Flush what can be flushed within ``timeout``; un-acked records stay spooled for the next start."""
        if not self._started:
            return
        flushed = self.flush(timeout)
        self._started = False
        producers = [p for p in (self._producer, self._retiring) if p is not None]
        self._producer = self._retiring = None  # reports served from here on change nothing but the count
        for producer in producers:
            if len(producer):
                producer.purge(in_queue=True, in_flight=True, blocking=False)
                self._serve(producer, 0)
        producers.clear()  # the last references: librdkafka's handles are destroyed here (not blocking)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._commit()
        self._spool.close()
        log.info("publisher.closed", flushed=flushed, unacked=self._spool.next_seq - self._acked_pos)

    @property
    def stats(self) -> PublisherStats:
        return PublisherStats(
            published=self._published, acked=self._acked,
            spooled_unacked=self._spool.next_seq - self._acked_pos, replayed=self._replayed,
            kafka_up=self._kafka_up, last_error=self._last_error, spool_bytes=self._spool.size_bytes)

    # -- feeding the producer ------------------------------------------------------------------
    def _pump(self, budget: int) -> None:
        """Hand records to the producer in seq order while the in-flight window has room."""
        producer = self._producer
        if producer is None or self._fatal is not None:
            return  # no producer, or it failed: the next poll retires it, records wait on disk
        end = self._spool.next_seq
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
            handed = self._produce_batch(producer, batch, from_disk)
            if handed < len(batch):
                rest = batch[handed:]
                if from_disk:
                    self._pushback = rest + self._pushback
                else:
                    self._cache.extendleft(reversed(rest))
                return
            budget -= len(batch)
            if not self._cache_valid and self._send_pos == self._spool.next_seq:
                self._cache_valid = True  # caught up with the writer: back to the in-memory path
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None

    def _produce_batch(self, producer: Producer, batch: list[tuple[int, str, bytes | None, bytes]],
                       from_disk: bool) -> int:
        """``produce()`` each record in order; how many were handed over (the rest is put back)."""
        produce = producer.produce
        report = self._on_delivery
        done = self._done
        limit = self.max_inflight_bytes
        inflight = self._inflight_bytes
        handed = 0
        full = False
        try:
            for seq, topic, key, value in batch:
                size = len(value)
                if done and seq in done:
                    pass  # confirmed by a previous producer: skipped, the checkpoint passes it when due
                else:
                    if inflight >= limit:
                        break
                    produce(topic, value, key, on_delivery=partial(report, seq, size))
                    inflight += size
                self._send_pos = seq + 1
                handed += 1
        except BufferError:
            full = True
        except KafkaException as exc:
            self._on_produce_refused(exc)
        finally:
            self._inflight_bytes = inflight
            if from_disk:
                self._replayed += handed
            else:
                self._cache_bytes -= sum(len(r[3]) for r in batch[:handed])
        if full:  # librdkafka's queue is full: serve its reports now, the rest waits on disk
            self._queue_full += 1
            self._serve(producer, 0)
        return handed

    def _on_produce_refused(self, exc: KafkaException) -> None:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else KafkaError(
            KafkaError._FAIL, str(exc))
        if error.fatal():
            self._fatal = self._fatal or error
        elif error.code() != self._produce_error:  # retried at every poll: log each kind once
            self._note_error("publisher.produce_refused", error)
        self._produce_error = error.code()

    # -- callbacks (served by Producer.poll/flush on the caller's thread) --------------------
    def _serve(self, producer: Producer, timeout: float) -> None:
        """``producer.poll``: runs the callbacks below; a fatal error is raised there too, not only reported."""
        try:
            producer.poll(timeout)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if error is None or not error.fatal():
                raise
            if producer is self._producer and self._fatal is None:
                self._fatal = error

    def _on_delivery(self, seq: int, size: int, error: KafkaError | None, _msg: Any) -> None:
        self._inflight_bytes -= size
        if error is not None:
            if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                self._too_large = True
            if self._producer is not None and self._fatal is None:
                self._fatal = error  # reports of a retiring producer (purged records) are expected
            return
        self._delivered += 1
        pos = self._acked_pos
        if seq == pos:
            pos += 1
            done = self._done
            while done and pos in done:
                done.remove(pos)
                pos += 1
            self._acked += pos - self._acked_pos
            self._acked_pos = pos
        elif seq > pos:
            self._done.add(seq)

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's error_cb: fatal errors replace the producer; the others are health signals."""
        if error.fatal():
            if self._producer is not None and self._fatal is None:
                self._fatal = error
            return
        self._last_error = repr(error)
        if error.code() in _BROKERS_DOWN:
            self._reachable = False
            if self._kafka_up:
                self._kafka_up = False
                log.warning("publisher.kafka_down", error=error.str(), unacked=self._spool.next_seq - self._acked_pos)
        elif error.code() not in (KafkaError._TRANSPORT, KafkaError._RESOLVE):  # those are in librdkafka's log
            log.warning("publisher.kafka_error", error=error.str(), code=error.name())

    # -- producer lifecycle --------------------------------------------------------------------
    def _new_producer(self) -> Producer:
        config = dict(self._producer_config)
        config["batch.size"] = self._batch_bytes
        config.update(error_cb=self._on_error, logger=LibrdkafkaLog(self.client_id))
        producer = Producer(config)  # does not wait for a broker: connecting is librdkafka's own business
        self._generation += 1
        self._producer_born = time.monotonic()
        log.info("publisher.producer_ready", bootstrap=self.bootstrap, client_id=self.client_id,
                 generation=self._generation, batch_size=self._batch_bytes)
        return producer

    def _retire(self, now: float) -> None:
        """The producer failed for good: stop feeding it and let it finish what is in flight."""
        error, self._fatal = self._fatal, None
        self._note_error("publisher.producer_failed", error)
        producer, self._producer = self._producer, None
        assert producer is not None
        try:  # librdkafka purges its queue itself on a fatal error; a failed record alone does not
            producer.purge(in_queue=True, in_flight=False, blocking=False)
        except KafkaException as exc:
            log.warning("publisher.purge_failed", error=repr(exc))
        self._retiring = producer
        self._retire_deadline = now + self.retire_timeout_s
        self._retire_purged = False
        lived = now - self._producer_born
        self._rebuild_backoff = 0.0 if lived > 30 else min(max(0.2, self._rebuild_backoff * 2), 5.0)

    def _drain_retiring(self, now: float) -> None:
        producer = self._retiring
        assert producer is not None
        self._serve(producer, 0)
        if len(producer):
            if now < self._retire_deadline:
                return
            if not self._retire_purged:  # in-flight requests that never end: give up on them
                log.warning("publisher.retire_purge", outstanding=len(producer))
                producer.purge(in_queue=True, in_flight=True, blocking=False)
                self._retire_purged = True
                self._retire_deadline = now + 5.0
                return
            log.warning("publisher.retire_abandoned", outstanding=len(producer))
        self._retiring = None  # its handle is destroyed with the last reference
        self._rebuild_at = now + self._rebuild_backoff

    def _rebuild(self, now: float) -> None:
        """Rewind to the first unconfirmed record and continue with a new producer."""
        if self._too_large:
            self._too_large = False
            self._batch_bytes = max(_MIN_BATCH_BYTES, self._batch_bytes // 2)
            log.error("publisher.batch_too_large", batch_size=self._batch_bytes,
                      hint="a topic's max.message.bytes is below the producer batch.size")
        self._inflight_bytes = 0
        self._send_pos = self._acked_pos
        self._drop_cache()
        self._producer = self._new_producer()
        log.info("publisher.rewound", to_seq=self._send_pos, confirmed_ahead=len(self._done),
                 backlog=self._spool.next_seq - self._send_pos)

    # -- bookkeeping ---------------------------------------------------------------------------
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

    # -- reachability probe ----------------------------------------------------------------------
    def _start_probe(self, now: float) -> None:
        """A metadata request on a thread of its own: ``list_topics`` blocks up to ``probe_timeout_s``."""
        producer = self._producer
        if producer is None or self._probe is not None:
            return
        self._next_probe = now + (self.idle_probe_interval_s if self._kafka_up else self.probe_interval_s)
        self._probe_delivered = self._delivered
        self._probe = threading.Thread(target=self._run_probe, args=(producer,), name="kafka-probe", daemon=True)
        self._probe.start()

    def _run_probe(self, producer: Producer) -> None:
        """The probe thread: only stores its answer; ``poll()`` acts on it on the caller's thread."""
        error: str | None = None
        try:
            producer.list_topics(timeout=self.probe_timeout_s)
        except KafkaException as exc:
            error = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else repr(exc)
        except Exception as exc:  # anything else also means no answer from Kafka
            error = repr(exc)
        self._probe_result = (error,)

    def _take_probe(self) -> None:
        """Apply a finished probe: answered -> reachable; no answer -> down, unless acks came meanwhile."""
        result = self._probe_result
        if result is None:
            return
        self._probe_result = None
        self._probe = None
        error = result[0]
        if error is None:
            self._reachable = True
            return
        self._reachable = False
        if self._kafka_up and self._delivered == self._probe_delivered:
            self._kafka_up = False
            self._last_error = f"metadata probe: {error}"
            log.warning("publisher.kafka_unreachable", error=error, timeout_s=self.probe_timeout_s,
                        unacked=self._spool.next_seq - self._acked_pos)

    def _update_health(self, now: float) -> None:
        """Up while acks flow (or, idle, while the probe reaches a broker); down when records wait
        without acks or the probe finds no broker."""
        self._take_probe()
        idle = self._acked_pos == self._spool.next_seq
        if self._probe is None and now >= self._next_probe and (idle or not self._kafka_up):
            self._start_probe(now)
        if self._delivered != self._delivered_seen:
            self._delivered_seen = self._delivered
            self._last_progress = now
            self._produce_error = None
            if not self._kafka_up:
                self._set_up()
        elif idle:
            self._last_progress = now
            if not self._kafka_up and self._reachable and self._producer is not None:
                self._set_up()
        elif self._kafka_up and now - self._last_progress > self.stall_after_s:
            self._kafka_up = False
            self._last_error = self._last_error or f"no ack for {self.stall_after_s}s"
            log.warning("publisher.kafka_stalled", inflight_bytes=self._inflight_bytes,
                        unacked=self._spool.next_seq - self._acked_pos)

    def _set_up(self) -> None:
        self._kafka_up = True
        log.info("publisher.kafka_up", acked_pos=self._acked_pos, backlog=self._spool.next_seq - self._send_pos)

    def _note_error(self, event: str, error: KafkaError | BaseException | None) -> None:
        self._last_error = repr(error)
        self._kafka_up = False
        log.warning(event, error=repr(error), acked_pos=self._acked_pos, send_pos=self._send_pos)

