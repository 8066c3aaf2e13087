"""Helpers for the sink fault test: the canonical events of a simulated load (computed offline),
produced to Kafka as the ingest would, and sink services run in threads.

The canonical events come from ``fault_helpers.SegmentedLoad``: each node's simulated stream is
rendered exactly as the simulator sends it and passed through the ingest's own decoder and a
fresh ``Normalizer`` (``fault_helpers.Reference``) -- what a fault-free ingest publishes for that
load, without running the ingest process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from ccod_fs.settings import KafkaSettings
from ccod_fs.simulator.loadgen import LoadSimulation
from ccod_fs.simulator.server import SimulatorServer
from ccod_fs.sink.service import SinkService, build_consumer, build_dlq_producer
from ccod_fs.sink.writer import Sink
from tests.e2e.fault_helpers import SegmentedLoad


@dataclass(frozen=True, slots=True)
class Canonical:
    tenant: str
    value: bytes


def canonical_events(simulation: LoadSimulation) -> list[Canonical]:
    """Every node's canonical events, node after node, each node's in the order the ingest publishes
    them (so per-call order holds within every tenant-keyed partition)."""
    out: list[Canonical] = []
    for index in range(len(simulation.nodes)):
        load = SegmentedLoad(simulation, index)
        # Never started: only its switch state serves the resync a fresh ingest runs on connect.
        server = SimulatorServer(password="unused", node=load.node, start_us=simulation.profile.start_us,
                                 track_state=False)
        load.configure(server)
        load.reference.connect(server)
        for _ in load.segment().events():
            pass
        assert not load.reference.dead_letters, load.reference.dead_letters
        out.extend(Canonical(e.tenant, e.value) for e in load.reference.events.values())
    return out


def produce(bootstrap: str, topic: str, events: list[Canonical]) -> None:
    """A raw producer keyed by tenant_id, as the ingest publishes."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024,
                             max_request_size=8 * 1024 * 1024)
    try:
        for event in events:
            producer.send(topic, key=event.tenant.encode(), value=event.value)
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)


def committed(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    """The group's committed offsets summed over the topic's partitions."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions))
    finally:
        consumer.close()


class Crash(BaseException):
    """Simulates the process dying: not an Exception, so no retry catches it."""


class CrashableSink(Sink):
    """A sink that inserts a batch and then dies before its offsets are committed: the first batch
    written once ``crash_when()`` holds (checked after the insert, inside the sink's own thread, so
    the crash cannot miss the last batch the way arming it from outside could)."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.crash_when: Callable[[], bool] = lambda: False
        self.crashed_rows = 0

    def write_rows(self, batch, token=None):  # type: ignore[no-untyped-def]
        written = super().write_rows(batch, token)
        if self.crash_when():
            self.crashed_rows = sum(written.values())
            raise Crash
        return written


@dataclass
class RunningSink:
    """A SinkService in a daemon thread; ``error`` holds what ended it, if anything did."""

    service: SinkService
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    @property
    def events(self) -> int:
        return self.service.stats["events"]

    def alive(self) -> bool:
        return self.thread.is_alive()

    def close(self, timeout: float = 60) -> None:
        """Stop (finishing and committing the current batch) and release the clients, or, when the
        thread already died, just close without committing anything."""
        self.service.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "sink thread did not stop"
        self.service.consumer.close()
        self.service.dlq.flush(10)


def start_sink(bootstrap: str, topic: str, dlq_topic: str, group: str, sink: Sink, *,
               batch_max_events: int = 20_000) -> RunningSink:
    kafka = KafkaSettings(bootstrap=bootstrap, events_topic=topic, dead_letter_topic=dlq_topic,
                          client_id=f"faults-{group}")
    consumer = build_consumer(kafka, group, session_timeout_ms=30_000, heartbeat_interval_ms=3_000,
                              max_poll_interval_ms=600_000)
    service = SinkService(consumer, build_dlq_producer(kafka), sink, dead_letter_topic=dlq_topic, origin=group,
                          batch_max_events=batch_max_events, batch_max_age_s=0.5, retry_max_backoff_s=2.0)
    running = RunningSink(service, threading.Thread(target=lambda: None, daemon=True))

    def run() -> None:
        try:
            service.run()
        except BaseException as exc:  # recorded for the test (Crash included)
            running.errors.append(exc)

    running.thread = threading.Thread(target=run, name=f"sink-{group}", daemon=True)
    running.thread.start()
    return running


def wait_for(predicate: Callable[[], object], timeout: float, what: Callable[[], str] | str,
             interval: float = 0.2) -> float:
    """Poll until ``predicate`` holds; the seconds it took. Fails with ``what`` after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s: {what() if callable(what) else what}")
        time.sleep(interval)
    return time.monotonic() - started
