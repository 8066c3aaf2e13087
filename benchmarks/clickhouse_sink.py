"""Kafka -> ClickHouse sink throughput, freshness and wallboard latency, with a raw-insert baseline.

Run: ``.venv/bin/python -m benchmarks.clickhouse_sink`` (starts a throwaway Kafka broker and
clickhouse-server with ``ccod_fs.devservices`` unless ``--bootstrap`` / ``--clickhouse`` are given).

1. throughput: N synthetic call events (several tenants; default 5.4 M: 90 s at the
   60,000 events/s target, still over 60 s at 80,000/s) are produced to a fresh topic
   first; then ``SinkService`` (decode, validate, derive rows, insert, commit) drains the
   topic into the server; events/s = N / (first poll -> last commit). The events are a block
   of complete calls built with the contract models, repeated with fresh event ids, call ids and one day later per copy
   (bytes replaced in the serialized JSON: generating millions of models would take minutes).
2. baseline, same run: the same rows (derived from the same values by the sink's own code,
   untimed) in batches of the sizes the sink inserted, inserted by bare clickhouse-driver columnar
   inserts into another database; only the inserts are timed; vs_raw_insert = sink / raw.
3. freshness: calls produced at a paced rate (default 2,000 events/s) while the sink runs with
   its production batch age; per event, produced -> its batch inserted into every table (the
   insert is synchronous, so the rows are visible to reports then); p95 reported.
4. wallboard: 10 M raw events generated inside embedded chDB and inside the server (SQL, not
   Python); median of the wallboard queries (today's counters per queue, waiting now, agents by
   state) for one tenant; the RESULT shows the worse of the two.
Ends with ``RESULT clickhouse_sink events_per_s=N vs_raw_insert=R freshness_p95_s=X wallboard_ms=Y``.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import logging
import pstats
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from benchmarks.wallboard_phase import bench_wallboard, bench_wallboard_server
from ccod_fs.clickhouse.client import NativeClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.events import serialize_event
from ccod_fs.settings import KafkaSettings
from ccod_fs.sink.decode import decode_run
from ccod_fs.sink.rows import TABLES, RowBatch, RowBuilder
from ccod_fs.sink.service import SinkService, build_consumer, build_dlq_producer, tune_gc
from ccod_fs.sink.synthetic import EventFactory, call_events
from ccod_fs.sink.writer import Sink

TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")
QUEUES = ("sales", "support", "billing")


def synthetic_events(n: int, start: datetime, tenant: str | None = None, seed: int = 0) -> list[Any]:
    """About ``n`` events of complete calls (answered ~85 %, abandoned, timeouts) with agent states."""
    f = EventFactory(core_uuid=f"bench-{seed}-{uuid.uuid4().hex[:8]}")
    out: list[Any] = []
    i = 0
    while len(out) < n:
        t = tenant or TENANTS[i % len(TENANTS)]
        kind = i % 20
        common: dict[str, Any] = {"tenant": t, "queue": QUEUES[i % 3],
                                  "start": start + timedelta(milliseconds=150 * i)}
        if kind == 0:
            out += call_events(f, **common, outcome="abandoned", wait_ms=1_000 + (i * 37) % 60_000)
        elif kind == 1:
            out += call_events(f, **common, outcome="timeout", wait_ms=120_000)
        else:
            out += call_events(f, **common, agent=f"agent-{i % 40}", wait_ms=(i * 53) % 45_000,
                               talk_ms=30_000 + (i * 101) % 300_000, holds=((5_000, 10_000),) if kind == 2 else (),
                               acw_ms=(i * 7) % 30_000 if kind % 2 else None)
        i += 1
    return out[:n]


DAY = b"2026-11-02T"


class EventSource:
    """N serialized events, deterministic, generated block by block (so nothing holds all N).

    One template block of complete calls comes from :func:`synthetic_events` (real models, real
    serializer); copy ``c`` of it gets event ids and call ids with ``c`` in their first 8 hex
    digits and every timestamp moved ``c`` days on: distinct events, valid for the contract.
    """

    def __init__(self, n: int, block: int = 20_000) -> None:
        self.n = n
        events = synthetic_events(block, datetime(2026, 11, 2, 8, tzinfo=UTC))
        self.template = [(e.tenant_id.encode(), serialize_event(e), str(e.event_id).encode(),
                          (e.call_id or "").encode()) for e in events]
        assert all(DAY in v for _k, v, _e, _c in self.template)

    def blocks(self) -> Iterator[list[tuple[bytes, bytes]]]:
        """(key, value) lists of at most one template block each, in production order."""
        left = self.n
        for copy in itertools.count():
            if left <= 0:
                return
            prefix = f"{copy:08x}".encode()
            day = (datetime(2026, 11, 2) + timedelta(days=copy)).strftime("%Y-%m-%dT").encode()
            out = []
            for key, value, eid, cid in self.template[:left]:
                value = value.replace(eid, prefix + eid[8:]).replace(DAY, day)
                if cid:
                    value = value.replace(cid, prefix + cid[8:])
                out.append((key, value))
            left -= len(out)
            yield out


def produce(bootstrap: str, topic: str, source: EventSource) -> float:
    """Untimed setup: librdkafka (the ingest's client, ~10x kafka-python's ``send()``), murmur2 keys."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 50, "batch.size": 1 << 20,
                         "partitioner": "murmur2_random", "queue.buffering.max.kbytes": 2_000_000})
    started = time.perf_counter()
    for block in source.blocks():
        for k, v in block:
            producer.produce(topic, v, k)
        producer.flush()  # bounds the producer's memory to one block
    return time.perf_counter() - started


class TimedSink(Sink):
    """Records when each batch's rows became visible, and the events' produced-at times."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.batches: list[tuple[float, int]] = []
        self.visible: list[tuple[float, list[int]]] = []
        self.track = False

    @staticmethod
    def events_in(batch: RowBatch) -> int:
        return batch.count("events_raw")

    def write_rows(self, batch: RowBatch, token: str | None = None) -> dict[str, int]:
        written = super().write_rows(batch, token)
        now = time.time()
        self.batches.append((time.perf_counter(), self.events_in(batch)))
        if self.track:
            self.visible.append((now, list(batch.tables["events_raw"]["occurred_at"])))
        return written


def kafka_ns(bootstrap: str, topic: str) -> KafkaSettings:
    return KafkaSettings(bootstrap=bootstrap, events_topic=topic, dead_letter_topic=f"{topic}.dlq", client_id="bench")


def make_topic(bootstrap: str, partitions: int = 12) -> str:
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1), NewTopic(f"{topic}.dlq", 1, 1)])
    admin.close()
    return topic


def rows_of(values: list[bytes]) -> RowBatch:
    """The rows the sink derives from these values (its own decoder and row builder)."""
    builder = RowBuilder()
    dead: list[Any] = []
    decode_run(values, range(len(values)), add=builder.add, dead=dead, origin="bench", topic="t", partition=0)
    assert not dead, dead[:1]
    return builder.finish()


def bench_throughput(bootstrap: str, ch: Any, n: int, batch: int, profile: str | None = None) -> tuple[float, float]:
    source = EventSource(n)
    topic = make_topic(bootstrap)
    secs = produce(bootstrap, topic, source)
    print(f"produced {n} events in {secs:.1f}s ({n / secs:,.0f}/s, untimed setup)")

    sink_db = NativeClient(ch.host, ch.port, f"bench_sink_{uuid.uuid4().hex[:6]}")
    migrate(sink_db)
    sink = TimedSink(sink_db)
    service = SinkService(build_consumer(kafka_ns(bootstrap, topic), "bench-sink"),
                          build_dlq_producer(kafka_ns(bootstrap, topic)), sink,
                          dead_letter_topic=f"{topic}.dlq", origin="bench", batch_max_events=batch,
                          batch_max_age_s=1.0)
    original_take = service._take
    first_poll: list[float] = []

    def take(records: Any) -> None:
        if records and not first_poll:
            first_poll.append(time.perf_counter())
        original_take(records)

    service._take = take  # type: ignore[method-assign, assignment]
    profiler = cProfile.Profile() if profile else None

    def run() -> None:
        if profiler is not None:
            profiler.enable()
        try:
            service.run()
        finally:
            if profiler is not None:
                profiler.disable()

    tune_gc()  # what ``ccod-fs sink`` does at start-up
    cpu_before = time.process_time()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while service.stats["events"] + service.stats["dead_letters"] < n:
        if not thread.is_alive():
            raise RuntimeError("sink died")
        time.sleep(0.05)
    done = sink.batches[-1][0]
    cpu = time.process_time() - cpu_before
    service.stop()
    thread.join(30)
    service.consumer.close()
    service.dlq.close()
    if profiler is not None and profile:
        profiler.dump_stats(profile)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    sink_secs = done - first_poll[0]
    sink_rate = n / sink_secs
    stored = sink_db.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"]
    assert stored == n, f"sink stored {stored} of {n} events"
    sizes = [size for _t, size in sink.batches]
    print(f"sink: {n} events in {sink_secs:.1f}s -> {sink_rate:,.0f} events/s ({len(sizes)} batches, "
          f"largest {max(sizes)}; process CPU {cpu:.1f}s)")

    # baseline: the same rows in batches of the same sizes, bare clickhouse-driver columnar inserts
    raw_db = NativeClient(ch.host, ch.port, f"bench_raw_{uuid.uuid4().hex[:6]}")
    migrate(raw_db)
    raw_client = raw_db._client
    nested = {t: raw_db._legacy_nested(t) for t in TABLES}
    uuid_columns = {t: raw_db._describe(t)[1] for t in TABLES}
    raw_secs = 0.0
    pending: list[bytes] = []
    blocks = source.blocks()
    for size in sizes:
        while len(pending) < size:
            pending += [v for _k, v in next(blocks)]
        values, pending = pending[:size], pending[size:]
        rows = rows_of(values)  # untimed, like the UUID objects and nested-column explosion below
        ready = []
        for table in TABLES:
            if not rows.count(table):
                continue
            data = {c: list(v) for c, v in rows.tables[table].items()}
            for c in uuid_columns[table]:  # UUID objects, as the driver wants them
                data[c] = [uuid.UUID(v) for v in data[c]]
            for base, width in nested[table].items():
                cells = data.pop(base)
                for k in range(width):
                    data[f"{base}.{k + 1}"] = [[t[k] for t in cell] for cell in cells]
            ready.append((f"INSERT INTO {table} ({', '.join(f'`{c}`' for c in data)}) VALUES", list(data.values())))
        started = time.perf_counter()
        for sql, cols in ready:
            raw_client.execute(sql, cols, columnar=True)
        raw_secs += time.perf_counter() - started
    raw_rate = n / raw_secs
    print(f"raw clickhouse-driver inserts: {n} events' rows in {raw_secs:.1f}s -> {raw_rate:,.0f} events/s")
    sink_db.close()
    raw_db.close()
    return sink_rate, raw_rate


def bench_freshness(bootstrap: str, ch: Any, rate: int, seconds: float) -> float:
    topic = make_topic(bootstrap)
    db = NativeClient(ch.host, ch.port, f"bench_fresh_{uuid.uuid4().hex[:6]}")
    migrate(db)
    sink = TimedSink(db)
    sink.track = True
    service = SinkService(build_consumer(kafka_ns(bootstrap, topic), "bench-fresh"),
                          build_dlq_producer(kafka_ns(bootstrap, topic)), sink,
                          dead_letter_topic=f"{topic}.dlq", origin="bench", batch_max_events=50_000,
                          batch_max_age_s=0.5)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    if not service.assigned.wait(120):  # joined the group and got partitions
        raise RuntimeError("freshness sink never got partitions assigned")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5)
    f = EventFactory(core_uuid=f"fresh-{uuid.uuid4().hex[:8]}")
    sent = 0
    started = time.time()
    i = 0
    while time.time() - started < seconds:
        target = int((time.time() - started) * rate)
        while sent < target:
            now = datetime.now(UTC)
            # occurred_at = produce time; durations 0 so every event of the call is stamped now
            for ev in call_events(f, tenant="fresh", queue="q", start=now, agent="a", wait_ms=0, ring_ms=0,
                                  talk_ms=0, ivr_ms=0, call_id=f"f{i}"):
                producer.send(topic, key=b"fresh", value=serialize_event(ev))
                sent += 1
            i += 1
        producer.flush() if sent % 200 == 0 else None
        time.sleep(0.005)
    producer.flush()
    producer.close()
    deadline = time.time() + 30
    while service.stats["events"] < sent and time.time() < deadline:
        time.sleep(0.05)
    service.stop()
    thread.join(30)
    service.consumer.close()
    service.dlq.close()
    lags = [visible - produced / 1000 for visible, stamps in sink.visible for produced in stamps]
    lags.sort()
    if len(lags) < sent:
        raise RuntimeError(f"freshness: only {len(lags)} of {sent} events became visible")
    p95 = lags[int(0.95 * (len(lags) - 1))]
    print(f"freshness at {rate}/s for {seconds:.0f}s: {len(lags)} events, p50 {statistics.median(lags):.2f}s "
          f"p95 {p95:.2f}s max {lags[-1]:.2f}s")
    db.close()
    return p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--clickhouse", help="host:port of a clickhouse-server instead of starting one")
    parser.add_argument("--events", type=int, default=5_400_000,
                        help="throughput events (default: 90 s at the 60,000 events/s target, over 60 s at 80,000)")
    parser.add_argument("--profile", help="cProfile the sink's consumer thread into this file")
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--fresh-rate", type=int, default=2_000)
    parser.add_argument("--fresh-seconds", type=float, default=20.0)
    parser.add_argument("--wallboard-events", type=int, default=10_000_000)
    parser.add_argument("--phases", default="throughput,freshness,wallboard",
                        help="comma-separated subset (skipped phases report nan)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("kafka").setLevel(logging.ERROR)

    started: list[Any] = []
    try:
        bootstrap = args.bootstrap or ""
        if not bootstrap and phases & {"throughput", "freshness"}:
            from ccod_fs.devservices import KafkaBroker

            broker = KafkaBroker().start()
            started.append(broker)
            bootstrap = broker.bootstrap
        if args.clickhouse:
            host, port = args.clickhouse.rsplit(":", 1)
            ch: Any = SimpleNamespace(host=host, port=int(port))
        else:
            from ccod_fs.devservices import ClickHouseServer

            server = ClickHouseServer().start()
            started.append(server)
            ch = server
        nan = float("nan")
        sink_rate, raw_rate = (bench_throughput(bootstrap, ch, args.events, args.batch, args.profile)
                               if "throughput" in phases else (nan, nan))
        p95 = bench_freshness(bootstrap, ch, args.fresh_rate, args.fresh_seconds) if "freshness" in phases else nan
        wallboard = nan
        if "wallboard" in phases:
            # the worse of embedded chDB and the server: the goal holds for both
            wallboard = max(bench_wallboard(args.wallboard_events), bench_wallboard_server(ch, args.wallboard_events))
    finally:
        for svc in reversed(started):
            svc.close()
    print(f"RESULT clickhouse_sink events_per_s={sink_rate:.0f} vs_raw_insert={sink_rate / raw_rate:.2f} "
          f"freshness_p95_s={p95:.2f} wallboard_ms={wallboard:.1f}")


if __name__ == "__main__":
    from ccod_fs.clickhouse.client import exit_process

    main()
    exit_process(0)
