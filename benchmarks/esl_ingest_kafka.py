"""ESL ingest -> real Kafka throughput, side by side with kafka-python alone.

Run: ``python -m benchmarks.esl_ingest_kafka`` (starts a throwaway broker unless ``--bootstrap``).

Today it measures the Kafka leg: the same pre-serialized ~1 KB events sent by a bare
``KafkaProducer`` (acks=all, idempotent, same settings) and by ``DurablePublisher`` (spool +
producer + ack checkpoint), in alternating rounds so machine noise hits both alike. Each rate
counts until every record is acknowledged by Kafka. The ESL simulator -> decode -> normalize
stage is to be put in front of ``measure_publisher``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from kafka import KafkaProducer

from ccod_fs.ingest.publisher import DurablePublisher, ensure_topics, producer_config

Message = tuple[bytes, bytes]  # (key, value), already serialized


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


def measure_raw_producer(bootstrap: str, messages: Sequence[Message], topic: str) -> float:
    """Events/s of kafka-python alone: send everything, flush, count until all acked."""
    producer = KafkaProducer(**producer_config(bootstrap, "bench-raw"))
    try:
        producer.send(topic, b"warm-up", key=b"warm-up").get(timeout=30)
        start = time.perf_counter()
        for key, value in messages:
            producer.send(topic, value, key=key)
        producer.flush()
        return len(messages) / (time.perf_counter() - start)
    finally:
        producer.close()


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--messages", type=int, default=100_000, help="events per round")
    parser.add_argument("--rounds", type=int, default=3)
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
        raw, pub = run(bootstrap, n=args.messages, rounds=args.rounds, size=args.size)
        if args.sustain:
            overall, windows = measure_publisher_sustained(bootstrap, make_messages(20_000, args.size), args.sustain)
            print(f"sustained {args.sustain:.0f} s: {overall:,.0f} events/s overall (until acked); per 10 s acked: "
                  + ", ".join(f"{w:,.0f}" for w in windows))
    finally:
        if broker is not None:
            broker.close()
    compression = producer_config(bootstrap, "x")["compression_type"]
    print(f"events={args.messages} x {args.rounds} rounds, ~{args.size} B each, acks=all, idempotent, "
          f"compression={compression}")
    print(f"raw kafka-python producer: {raw:,.0f} events/s (median)")
    print(f"DurablePublisher:          {pub:,.0f} events/s (median)")
    print(f"RESULT esl_ingest_kafka events_per_s={pub:.0f} vs_raw_producer={pub / raw:.2f}")


if __name__ == "__main__":
    main()
