"""Helpers for the ingest fault tests: a segmented simulated load with its fault-free expectation,
the ingest process with its ops port, the spool as seen from outside, and Kafka read back exactly.

The expectation is computed in the test process from the very events the simulator sends (the
same renumbered, rendered frames), through the ingest's own decoder and a fresh ``Normalizer``
configured like the process's: what a fault-free ingest would publish for that stream.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from ccod_fs.contract.events import serialize_event
from ccod_fs.esl.decode import decode_json_body
from ccod_fs.ingest.normalize import NormalizeError, Normalizer
from ccod_fs.ingest.spool import CHECKPOINT, CHECKPOINT_FILE, MAGIC, SEGMENT_SUFFIX, iter_frames
from ccod_fs.ingest.subscriptions import is_subscribed
from ccod_fs.simulator.commands import run_api
from ccod_fs.simulator.connection import Sendable
from ccod_fs.simulator.loadgen import LoadSimulation
from ccod_fs.simulator.loadstream import NodeLoad
from ccod_fs.simulator.model import NodeIdentity
from ccod_fs.simulator.server import SimulatorServer
from ccod_fs.simulator.synth import StaticEvent
from tests.e2e import helpers as e2e_helpers

Record = tuple[int, int, bytes | None, bytes]  # partition, offset, key, value


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``predicate`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---- expectation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    seq: int  # Event-Sequence of the ESL event it comes from
    type: str
    call_id: str | None
    tenant: str
    value: bytes  # the serialized canonical event a fault-free ingest publishes


class Reference:
    """What a fault-free ingest publishes for the events it is shown, in order."""

    def __init__(self, node: str) -> None:
        self.normalizer = Normalizer(node=node)  # the ingest's defaults (IngestSettings.tenants)
        self.events: dict[str, Expected] = {}
        self.subscribed_seqs: list[int] = []
        self.dead_letters: Counter[str] = Counter()  # by reason (stage "normalize")

    def connect(self, server: SimulatorServer) -> None:
        """The resync a fresh ingest runs on connect (agents' tenants come from their contact strings)."""
        now = server.now_us()
        self.normalizer.resync_agents(run_api(server.state, "callcenter_config agent list", now).body)
        assert self.normalizer.resync(run_api(server.state, "show channels as json", now).body) == []

    def observe(self, payload: bytes) -> None:
        try:
            items = self.normalizer.normalize(decode_json_body(payload))
        except NormalizeError as exc:
            self.dead_letters[exc.reason] += 1
            return
        for env in items:
            seq = env.source.event_sequence
            assert seq is not None
            self.events[str(env.event_id)] = Expected(seq, env.type, env.call_id, env.tenant_id,
                                                      serialize_event(env))

    def ids(self, seqs: set[int] | None = None) -> set[str]:
        if seqs is None:
            return set(self.events)
        return {eid for eid, e in self.events.items() if e.seq in seqs}


class SegmentedLoad:
    """One node's simulated load as one deterministic stream, played in consecutive segments.

    Segment ``k`` is numbered ``k * seq_gap`` above the plain stream, so the api commands a
    reconnecting ingest runs between segments take Event-Sequence numbers of their own (as on a
    real switch) and never collide with the stream's. Every event passing to the simulator is
    also shown to the :class:`Reference` when the ingest subscribes to it.
    """

    def __init__(self, simulation: LoadSimulation, node_index: int = 0, *, seq_start: int = 1000,
                 seq_gap: int = 10_000_000) -> None:
        self.node: NodeIdentity = simulation.nodes[node_index]
        self.load = NodeLoad(simulation, node_index)
        self.reference = Reference(self.node.hostname)
        self.seq_gap = seq_gap
        self.pulled = 0
        self._segments = 0
        self._stream: Iterator[Sendable] = self.load.events(self.node, seq_start)
        self.exhausted = False

    def configure(self, server: SimulatorServer) -> None:
        """Agents and queues exist before the ingest connects (as on a configured switch)."""
        self.load.configure(server.state)

    def segment(self, *, events: int | None = None, subscribed: int | None = None,
                max_rate: float | None = None) -> Segment:
        """The next ``events`` events (or up to the ``subscribed``-th subscribed one); None: to the end."""
        segment = Segment(self, self._segments, events, subscribed, max_rate)
        self._segments += 1
        return segment

    def _next(self, offset: int) -> Sendable | None:
        ev = next(self._stream, None)
        if ev is None:
            self.exhausted = True
            return None
        if offset:
            assert not isinstance(ev, StaticEvent), "static events (numbered when built) only open the stream"
            ev.seq += offset
        self.pulled += 1
        if is_subscribed(ev.name, ev.subclass or None):
            self.reference.subscribed_seqs.append(ev.seq)
            self.reference.observe(ev.payload("json"))
        return ev


@dataclass
class Segment:
    """A playable scenario (``events(node, seq_start)``) over the next slice of a :class:`SegmentedLoad`."""

    load: SegmentedLoad
    index: int
    max_events: int | None
    max_subscribed: int | None
    max_rate: float | None
    played: int = 0
    subscribed: int = 0

    def events(self, node: object = None, seq_start: int = 1) -> Iterator[Sendable]:
        offset = self.index * self.load.seq_gap
        started = time.monotonic()
        while self.max_events is None or self.played < self.max_events:
            ev = self.load._next(offset)
            if ev is None:
                return
            self.played += 1
            if is_subscribed(ev.name, ev.subclass or None):
                self.subscribed += 1
            if self.max_rate:
                ahead = started + self.played / self.max_rate - time.monotonic()
                if ahead > 0.02:
                    time.sleep(ahead)
            yield ev
            if self.max_subscribed is not None and self.subscribed >= self.max_subscribed:
                return


# ---- the ingest process and its ops port ---------------------------------------------------------


@dataclass
class IngestProcess:
    proc: subprocess.Popen[bytes]
    http_port: int
    log_path: Path

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as resp:
            return resp.read()  # type: ignore[no-any-return]

    def health(self) -> dict[str, object] | None:
        """``/healthz`` (also served, as 503, while ESL is down); None while the port is not up."""
        try:
            return orjson.loads(self._get("/healthz"))  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            return orjson.loads(exc.read())  # type: ignore[no-any-return]
        except OSError:
            return None

    def metrics(self) -> dict[str, float]:
        """Prometheus samples by name (labels ignored, values summed)."""
        out: dict[str, float] = defaultdict(float)
        for family in text_string_to_metric_families(self._get("/metrics").decode()):
            for sample in family.samples:
                out[sample.name] += sample.value
        return dict(out)

    def events_in(self) -> int:
        health = self.health()
        return int(health["events_in"]) if health else -1  # type: ignore[call-overload]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def start_ingest(*, esl_port: int, password: str, node: str, bootstrap: str, events_topic: str,
                 dead_letter_topic: str, spool_dir: Path, log_path: Path, http_port: int) -> IngestProcess:
    """``ccod-fs ingest`` as a real process with its ``/healthz`` and ``/metrics`` on ``http_port``."""
    proc = e2e_helpers.start_ingest(esl_port=esl_port, password=password, node=node, bootstrap=bootstrap,
                                    events_topic=events_topic, dead_letter_topic=dead_letter_topic,
                                    spool_dir=spool_dir, log_path=log_path, http_port=http_port)
    ingest = IngestProcess(proc, http_port, log_path)
    wait_until(lambda: ingest.health() is not None or proc.poll() is not None, 120, "the ingest's ops port")
    assert proc.poll() is None, ingest.log_tail()
    return ingest


# ---- the spool, read from outside (the owning process may be dead) -------------------------------


@dataclass(frozen=True, slots=True)
class SpoolView:
    end_seq: int  # one past the last valid record on disk
    acked_seq: int  # the checkpoint: records below it are confirmed by Kafka


def spool_view(directory: Path) -> SpoolView:
    end = 0
    for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
        first = int(path.name.removesuffix(SEGMENT_SUFFIX))
        fd = os.open(path, os.O_RDONLY)
        try:
            last = first - 1
            for _, record in iter_frames(fd, len(MAGIC), os.fstat(fd).st_size, first):
                last = record.seq
            end = max(end, last + 1)
        finally:
            os.close(fd)
    acked = 0
    checkpoint = directory / CHECKPOINT_FILE
    if checkpoint.exists():
        acked = CHECKPOINT.unpack(checkpoint.read_bytes())[0]
    return SpoolView(max(end, acked), acked)


# ---- Kafka, read back exactly --------------------------------------------------------------------


def read_all(bootstrap: str, topic: str, timeout: float = 120) -> list[Record]:
    """Every record of ``topic`` up to the end offsets as of now, in partition/offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_bytes=32 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024)
    try:
        deadline = time.monotonic() + timeout
        parts = consumer.partitions_for_topic(topic)
        while not parts:
            assert time.monotonic() < deadline, f"topic {topic} has no partitions"
            time.sleep(0.2)
            parts = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Record] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"reading {topic}: {len(out)} records after {timeout}s"
            for recs in consumer.poll(timeout_ms=500, max_records=50_000).values():
                out.extend((r.partition, r.offset, r.key, r.value) for r in recs if r.offset < ends[
                    TopicPartition(topic, r.partition)])
        out.sort(key=lambda r: (r[0], r[1]))
        return out
    finally:
        consumer.close()


@dataclass
class Delivery:
    """What reached the events topic, judged by event id and per-call order."""

    records: int = 0
    events: dict[str, dict[str, object]] = field(default_factory=dict)  # first occurrence by event id
    duplicates: int = 0
    differing_duplicates: list[str] = field(default_factory=list)
    order_violations: list[str] = field(default_factory=list)
    calls_split: list[str] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return set(self.events)


def analyze(records: list[Record]) -> Delivery:
    """Distinct ids, physical duplicates (must be byte-identical), and per-call order: within its
    partition, a call's first occurrences carry non-decreasing ``source.event_sequence``."""
    out = Delivery(records=len(records))
    first_value: dict[str, bytes] = {}
    last_seq: dict[str, int] = {}
    partition_of: dict[str, int] = {}
    for partition, _offset, _key, value in records:
        event = orjson.loads(value)
        eid = event["event_id"]
        if eid in first_value:
            out.duplicates += 1
            if first_value[eid] != value and len(out.differing_duplicates) < 10:
                out.differing_duplicates.append(eid)
            continue
        first_value[eid] = value
        out.events[eid] = event
        call = event.get("call_id")
        seq = event["source"].get("event_sequence")
        if call is None:
            continue
        if partition_of.setdefault(call, partition) != partition and len(out.calls_split) < 10:
            out.calls_split.append(call)
        if seq is None:
            continue
        if seq < last_seq.get(call, -1) and len(out.order_violations) < 10:
            out.order_violations.append(f"call {call}: seq {seq} after {last_seq[call]}")
        last_seq[call] = max(seq, last_seq.get(call, -1))
    return out
