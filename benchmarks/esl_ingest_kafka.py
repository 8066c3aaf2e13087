"""ESL ingest -> real Kafka throughput, side by side with kafka-python alone.

Run: ``python -m benchmarks.esl_ingest_kafka`` (starts a throwaway broker unless ``--bootstrap``).

Two stages, same run, same broker:
1. the whole ingest: ``ccod-fs simulate --prerender`` (a separate process, real ESL over
   loopback TCP; it renders the subscribed stream into a file before the clock starts, since
   rendering live in Python feeds only ~6,500 events/s, a fraction of what the ingest takes)
   -> ESL ingest (decode, normalize, serialize, spool, DurablePublisher) -> Kafka, with the
   rate of every 10 s window; then the very messages it produced (the first 200,000), re-sent
   by a bare kafka-python ``KafkaProducer`` (acks=all, idempotent: the issue's baseline).
   ``vs_raw_producer`` compares the two on the same messages. The same messages through a bare
   confluent-kafka (librdkafka) producer, the client the publisher uses, are printed for
   information (not in RESULT).
2. (``--publisher-rounds``) the Kafka leg alone: pre-serialized ~1 KB events through a bare
   ``KafkaProducer`` and through ``DurablePublisher``, in alternating rounds.
Every rate counts until each record is acknowledged by Kafka.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from kafka import KafkaProducer

from ccod_fs.bus.kafka_log import LibrdkafkaLog
from ccod_fs.ingest.kafka_topics import ensure_topics
from ccod_fs.ingest.publisher import DurablePublisher, producer_config

Message = tuple[bytes, bytes]  # (key, value), already serialized
RAW_SAMPLE = 200_000


def make_messages(n: int, size: int = 1024, calls: int = 2000) -> list[Message]:
    """``n`` JSON-shaped events of about ``size`` bytes, keyed by call id like the ingest does."""
    out = []
    for i in range(n):
        key = b"tenant-7:call-%06d" % (i % calls)
        head = (b'{"event_id":"fs1:3b0e4c1e-%012d","type":"call.answered","schema_version":1,'
                b'"tenant_id":"tenant-7","call_id":"%s","occurred_at":"2026-11-25T18:00:00.%03dZ",'
                b'"payload":{"pad":"' % (i, key, i % 1000))
        out.append((key, head + b"x" * max(0, size - len(head) - 3) + b'"}}'))
    return out


def kafka_python_config(bootstrap: str, client_id: str) -> dict[str, Any]:
    """The raw baseline's kafka-python settings: the guarantees the publisher gives (acks=all,
    idempotent, in order, no expiry) with the batching the previous kafka-python publisher used."""
    from kafka.codec import has_lz4

    return {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": 5,
        "linger_ms": 10,
        "batch_size": 256 * 1024,
        "compression_type": "lz4" if has_lz4() else None,
        "retries": float("inf"),
        "delivery_timeout_ms": 2**31 - 1,
        "request_timeout_ms": 30_000,
        "max_block_ms": 5_000,
    }


def measure_raw_producer(bootstrap: str, messages: Sequence[Message], topic: str) -> float:
    """Events/s of kafka-python alone: send everything, flush, count until all acked."""
    producer = KafkaProducer(**kafka_python_config(bootstrap, "bench-raw"))
    try:
        producer.send(topic, b"warm-up", key=b"warm-up").get(timeout=30)
        start = time.perf_counter()
        for key, value in messages:
            producer.send(topic, value, key=key)
        producer.flush()
        return len(messages) / (time.perf_counter() - start)
    finally:
        producer.close()


def measure_raw_librdkafka(bootstrap: str, messages: Sequence[Message], topic: str) -> float:
    """Events/s of confluent-kafka alone, with the publisher's producer settings, counted until all acked."""
    config = producer_config(bootstrap, "bench-raw-librdkafka")
    config["queue.buffering.max.kbytes"] = 2_000_000  # no backpressure: everything queued at once
    config["logger"] = LibrdkafkaLog("bench-raw-librdkafka")  # librdkafka's lines as the publisher logs them
    failed: list[object] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    producer = Producer(config)
    producer.produce(topic, b"warm-up", b"warm-up")
    if producer.flush(30):
        raise RuntimeError(f"librdkafka producer could not reach Kafka at {bootstrap}")
    produce, poll = producer.produce, producer.poll
    start = time.perf_counter()
    for i, (key, value) in enumerate(messages):
        produce(topic, value, key, on_delivery=report)
        if i % 1000 == 0:
            poll(0)
    if producer.flush(120) or failed:
        raise RuntimeError(f"librdkafka producer did not deliver everything: {failed[:3]}")
    return len(messages) / (time.perf_counter() - start)


def measure_publisher(bootstrap: str, messages: Sequence[Message], topic: str | None = None,
                      spool_dir: Path | None = None, poll_every: int = 100) -> float:
    """Events/s through ``DurablePublisher`` (spooled, checkpointed), counted until all acked."""
    topic = topic or _fresh_topic(bootstrap)
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as tmp:
        publisher = DurablePublisher(bootstrap=bootstrap, spool_dir=spool_dir or Path(tmp), client_id="bench-pub")
        publisher.start()
        try:
            publisher.publish(topic, b"warm-up", b"warm-up")
            if not publisher.flush(60):
                raise RuntimeError(f"publisher could not reach Kafka at {bootstrap}: {publisher.stats}")
            publish, poll = publisher.publish, publisher.poll
            start = time.perf_counter()
            for i, (key, value) in enumerate(messages):
                publish(topic, key, value)
                if i % poll_every == 0:
                    poll()
            if not publisher.flush(120):
                raise RuntimeError(f"publisher did not drain: {publisher.stats}")
            return len(messages) / (time.perf_counter() - start)
        finally:
            publisher.close()


def measure_publisher_sustained(bootstrap: str, messages: Sequence[Message], seconds: float,
                                topic: str | None = None, poll_every: int = 100) -> tuple[float, list[float]]:
    """Publish ``messages`` in a loop for ``seconds``; overall events/s (until all acked) and per-10 s rates."""
    topic = topic or _fresh_topic(bootstrap)
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as tmp:
        publisher = DurablePublisher(bootstrap=bootstrap, spool_dir=Path(tmp), client_id="bench-sustained")
        publisher.start()
        try:
            publisher.publish(topic, b"warm-up", b"warm-up")
            if not publisher.flush(60):
                raise RuntimeError(f"publisher could not reach Kafka at {bootstrap}: {publisher.stats}")
            base_acked = publisher.stats.acked
            publish, poll = publisher.publish, publisher.poll
            start = window_start = time.perf_counter()
            window_acked = base_acked
            windows: list[float] = []
            sent = 0
            while time.perf_counter() - start < seconds:
                for i, (key, value) in enumerate(messages):
                    publish(topic, key, value)
                    if i % poll_every == 0:
                        poll()
                sent += len(messages)
                now = time.perf_counter()
                if now - window_start >= 10:
                    acked = publisher.stats.acked
                    windows.append((acked - window_acked) / (now - window_start))
                    window_acked, window_start = acked, now
            if not publisher.flush(120):
                raise RuntimeError(f"publisher did not drain: {publisher.stats}")
            return sent / (time.perf_counter() - start), windows
        finally:
            publisher.close()


def _fresh_topic(bootstrap: str, partitions: int = 4) -> str:
    topic = f"bench.esl-ingest.{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: partitions})
    return topic


def run(bootstrap: str, *, n: int, rounds: int, size: int) -> tuple[float, float]:
    messages = make_messages(n, size)
    raw: list[float] = []
    pub: list[float] = []
    for r in range(rounds):
        raw.append(measure_raw_producer(bootstrap, messages, _fresh_topic(bootstrap)))
        pub.append(measure_publisher(bootstrap, messages, _fresh_topic(bootstrap)))
        print(f"round {r + 1}/{rounds}: raw kafka-python {raw[-1]:,.0f}/s  DurablePublisher {pub[-1]:,.0f}/s",
              flush=True)
    return statistics.median(raw), statistics.median(pub)


class _Tee:
    """Publisher wrapper that keeps what the ingest produced, for the raw baseline."""

    def __init__(self, inner: DurablePublisher, topic: str) -> None:
        self.inner = inner
        self.topic = topic
        self.captured: list[Message] = []

    def publish(self, topic: str, key: bytes | None, value: bytes) -> None:
        if topic == self.topic:
            self.captured.append((key or b"", value))
        self.inner.publish(topic, key, value)

    def poll(self) -> None:
        self.inner.poll()

    def flush(self, timeout: float | None = None) -> bool:
        return self.inner.flush(timeout)

    def close(self, timeout: float = 10) -> None:
        self.inner.close(timeout)

    @property
    def stats(self) -> object:
        return self.inner.stats


@dataclass(frozen=True, slots=True)
class IngestRun:
    esl_events: int
    canonical_events: int
    dead_letters: int
    seconds: float  # first event read -> last event acked
    windows: list[float]  # ESL events/s read in each full 10 s window
    messages: list[Message]  # what the ingest produced, for the raw baseline


def measure_esl_ingest(bootstrap: str, *, calls: int, seed: int = 1) -> IngestRun:
    """Simulator process -> in-process ingest -> Kafka; rates from the first event to the last ack."""
    import json
    import secrets
    import subprocess
    import sys

    import gevent
    from pydantic import SecretStr

    from ccod_fs.ingest.service import IngestService
    from ccod_fs.settings import EslSettings, IngestSettings, KafkaSettings

    password = secrets.token_urlsafe(10)
    events_topic = _fresh_topic(bootstrap)
    dlq_topic = _fresh_topic(bootstrap, partitions=1)
    sim = subprocess.Popen(
        [sys.executable, "-m", "ccod_fs.cli", "--log-level", "WARNING", "simulate", f"--password={password}",
         "--calls", str(calls), "--seed", str(seed), "--nodes", "1", "--tenants", "4", "--arrivals-per-s", "2",
         "--agents-per-queue", "12", "--serve-after-s", "600", "--prerender"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert sim.stdout is not None
    port = int(json.loads(sim.stdout.readline())["port"])
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        settings = IngestSettings(
            esl=EslSettings(port=port, password=SecretStr(password), node="bench"),
            kafka=KafkaSettings(bootstrap=bootstrap, events_topic=events_topic, dead_letter_topic=dlq_topic),
            spool_dir=Path(tmp),
        )
        publisher = DurablePublisher(bootstrap=bootstrap, spool_dir=Path(tmp) / "spool", client_id="bench-ingest")
        publisher.start()
        tee = _Tee(publisher, events_topic)
        service = IngestService(settings, tee, node="bench")
        greenlet = gevent.spawn(service.run)
        try:
            while service.pipeline.events_in == 0:
                if greenlet.dead or sim.poll() is not None:
                    raise RuntimeError("ingest or simulator stopped before the first event")
                gevent.sleep(0.001)
            start = time.perf_counter()
            # The simulator keeps serving after its stream ends: the run is over once nothing new
            # was read or acked for 2 s; its end is the last moment something was read or acked.
            last: tuple[int, int] = (-1, -1)
            changed = read_done = window_start = time.perf_counter()
            window_in = service.pipeline.events_in
            windows: list[float] = []  # ESL events/s read in each full 10 s window
            while time.perf_counter() - changed < 2.0:
                gevent.sleep(0.05)
                now_state = (service.pipeline.events_in, publisher.stats.acked)
                if time.perf_counter() - window_start >= 10.0:
                    windows.append((now_state[0] - window_in) / (time.perf_counter() - window_start))
                    window_in, window_start = now_state[0], time.perf_counter()
                if now_state != last:
                    if now_state[0] != last[0]:
                        read_done = time.perf_counter()
                    last, changed = now_state, time.perf_counter()
            assert service.connection is not None
            service.connection.api("status")  # TCP order: every event before this reply was read
            if not tee.flush(300):
                raise RuntimeError(f"publisher did not drain: {publisher.stats}")
            elapsed = changed - start
            print(f"ingest: last ESL event read {read_done - start:.1f} s after the first, last ack at "
                  f"{elapsed:.1f} s", flush=True)
            esl_in, out, dead = service.pipeline.events_in, service.pipeline.events_out, service.pipeline.dead_lettered
        finally:
            service.request_stop()
            greenlet.join(timeout=30)
            tee.close()
            sim.terminate()
            sim.wait(30)
    return IngestRun(esl_in, out, dead, elapsed, windows, tee.captured)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--calls", type=int, default=130_000,
                        help="simulated calls for the whole-ingest stage (~17.4 subscribed ESL events each: the "
                             "default, ~2.26 M events, lasts 75 s at the 30,000 events/s goal, so the rate "
                             "is sustained past 60 s; rendering it first takes ~4 min)")
    parser.add_argument("--messages", type=int, default=100_000, help="events per publisher-only round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publisher-rounds", action="store_true", help="also measure the Kafka leg alone")
    parser.add_argument("--size", type=int, default=1024, help="bytes per event")
    parser.add_argument("--sustain", type=float, default=0.0,
                        help="also run the publisher alone for this many seconds (acked rate per 10 s)")
    args = parser.parse_args(argv)

    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from ccod_fs.devservices import KafkaBroker

        broker = KafkaBroker().start()
        bootstrap = broker.bootstrap
    try:
        ingest = measure_esl_ingest(bootstrap, calls=args.calls)
        messages = ingest.messages
        sample = messages[:RAW_SAMPLE]  # a rate per message: the first messages suffice, 3 rounds stay short
        raw_rates = [measure_raw_producer(bootstrap, sample, _fresh_topic(bootstrap)) for _ in range(3)]
        raw_same = statistics.median(raw_rates)
        rdkafka_rates = [measure_raw_librdkafka(bootstrap, sample, _fresh_topic(bootstrap)) for _ in range(3)]
        if args.publisher_rounds:
            raw, pub = run(bootstrap, n=args.messages, rounds=args.rounds, size=args.size)
            print(f"Kafka leg alone, ~{args.size} B events: raw kafka-python {raw:,.0f}/s, "
                  f"DurablePublisher {pub:,.0f}/s (medians)")
        if args.sustain:
            overall, windows = measure_publisher_sustained(bootstrap, make_messages(20_000, args.size), args.sustain)
            print(f"sustained {args.sustain:.0f} s: {overall:,.0f} events/s overall (until acked); per 10 s acked: "
                  + ", ".join(f"{w:,.0f}" for w in windows))
    finally:
        if broker is not None:
            broker.close()
    seconds = ingest.seconds
    esl_rate = ingest.esl_events / seconds
    out_rate = ingest.canonical_events / seconds
    compression = producer_config(bootstrap, "x")["compression.type"]
    print(f"whole ingest, {args.calls} simulated calls: {ingest.esl_events:,} ESL events -> "
          f"{ingest.canonical_events:,} canonical events ({ingest.dead_letters} dead letters) in {seconds:.1f} s "
          f"(acks=all, idempotent, compression={compression})")
    print(f"  ESL events/s through ingest, until acked:       {esl_rate:,.0f}")
    windows = ingest.windows
    if windows:
        print("  ESL events/s read per 10 s window (sustained): " + ", ".join(f"{w:,.0f}" for w in windows)
              + f"; slowest window {min(windows):,.0f}; {len(windows) * 10} s of full windows"
              + ("" if len(windows) >= 6 else " (under 60 s: raise --calls to measure a 60 s sustained rate)"))
    print(f"  canonical events/s through ingest, until acked: {out_rate:,.0f}")
    print(f"  raw kafka-python, the first {min(len(messages), RAW_SAMPLE):,} of those messages:  "
          f"{raw_same:,.0f}/s (median of 3: "
          + ", ".join(f"{r:,.0f}" for r in raw_rates) + ")")
    print(f"  (information) raw confluent-kafka/librdkafka, same messages: {statistics.median(rdkafka_rates):,.0f}/s "
          "(median of 3: " + ", ".join(f"{r:,.0f}" for r in rdkafka_rates) + "; the publisher's client)")
    print(f"RESULT esl_ingest_kafka events_per_s={esl_rate:.0f} vs_raw_producer={out_rate / raw_same:.2f}")


if __name__ == "__main__":
    main()
