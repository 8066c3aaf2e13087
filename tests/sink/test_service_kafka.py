"""The sink service end to end: real Kafka -> SinkService -> the real 18.16 server."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import TopicPartition

from ccod_fs.clickhouse.client import NativeClient
from ccod_fs.clickhouse.migrate import migrate
from ccod_fs.contract.events import serialize_event
from ccod_fs.devservices.clickhouse import ClickHouseServer
from ccod_fs.settings import KafkaSettings
from ccod_fs.sink.kafka_client import SinkConsumer, consumer_config
from ccod_fs.sink.service import SinkService, build_consumer, build_dlq_producer
from ccod_fs.sink.synthetic import EventFactory, call_events
from ccod_fs.sink.writer import Sink

T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)
T0_MS = 1772355600250


@pytest.fixture
def kafka(kafka_bootstrap: str):
    """Fresh topics per test so offsets and dead letters are this test's alone."""
    suffix = uuid.uuid4().hex[:8]
    ns = KafkaSettings(bootstrap=kafka_bootstrap, events_topic=f"ccod.events.v1.t{suffix}",
                       dead_letter_topic=f"ccod.deadletter.v1.t{suffix}", client_id="test")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(ns.events_topic, 3, 1), NewTopic(ns.dead_letter_topic, 1, 1)])
    admin.close()
    return ns


def produce(kafka, values: list[bytes]) -> None:
    p = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    for i, v in enumerate(values):
        p.send(kafka.events_topic, key=f"k{i % 5}".encode(), value=v)
    p.flush()
    p.close()


def make_service(kafka, sink: Sink, group: str, **kw: Any) -> SinkService:
    group = f"{group}-{kafka.events_topic}"  # a test's groups are its own (no stale members from others)
    consumer = build_consumer(kafka, group, session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
    return SinkService(consumer, build_dlq_producer(kafka), sink, dead_letter_topic=kafka.dead_letter_topic,
                       origin=group, batch_max_events=kw.pop("batch_max_events", 1000),
                       batch_max_age_s=kw.pop("batch_max_age_s", 0.2), retry_max_backoff_s=1.0, **kw)


def stop_service(service: SinkService, thread: threading.Thread) -> None:
    service.stop()
    thread.join(30)
    service.consumer.close()
    service.dlq.close()


def stop_services(services: tuple[SinkService, ...], threads: list[threading.Thread]) -> None:
    """Stop group members together: each leaves the group only after all were told to stop."""
    for service in services:
        service.stop()
    for thread in threads:
        thread.join(30)
    for service in services:
        service.consumer.close()
        service.dlq.close()


def run_until(service: SinkService, done: Callable[[], bool], timeout: float = 60.0) -> None:
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert thread.is_alive(), "sink service died"
            assert time.monotonic() < deadline, f"timed out; stats={service.stats}"
            time.sleep(0.1)
    finally:
        stop_service(service, thread)


def calls_fixture() -> list:
    f = EventFactory()
    evs = []
    for i in range(20):
        evs += call_events(f, tenant="acme" if i % 2 else "globex", queue="sales", start=T0, call_id=f"c{i}",
                           agent=f"a{i % 3}", wait_ms=1_000 * (i + 1), talk_ms=30_000 + i, ring_ms=500)
    return evs


def committed(kafka, group: str) -> int:
    c = KafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=f"{group}-{kafka.events_topic}",
                      enable_auto_commit=False)
    total = 0
    for p in range(3):
        total += c.committed(TopicPartition(kafka.events_topic, p)) or 0
    c.close()
    return total


def test_end_to_end_rows_dead_letters_and_offsets(kafka, native: NativeClient) -> None:
    migrate(native)
    evs = calls_fixture()
    bad_json = b'{"event_id": "not json'
    bad_event = orjson.dumps({**orjson.loads(serialize_event(evs[0])), "tenant_id": ""})
    produce(kafka, [serialize_event(e) for e in evs] + [bad_json, bad_event])
    service = make_service(kafka, Sink(native), "g1")
    run_until(service, lambda: service.stats["events"] + service.stats["dead_letters"] >= len(evs) + 2)

    assert service.stats["events"] == len(evs) and service.stats["dead_letters"] == 2
    assert committed(kafka, "g1") == len(evs) + 2
    raw = native.query("SELECT event_id, tenant_id, occurred_at FROM events_raw FINAL")
    assert {str(r["event_id"]) for r in raw} == {str(e.event_id) for e in evs}
    offered = native.query("SELECT occurred_at FROM events_raw WHERE call_id = 'c3' AND type = 'call.offered'")
    assert offered == [{"occurred_at": T0_MS}]
    c3 = native.query(
        "SELECT any(tenant_id) AS tenant, min(queued_at) AS queued, max(answer_wait_ms) AS wait, "
        "sum(bridge_ms) AS talk FROM calls_partial FINAL WHERE call_id = 'c3' GROUP BY call_id")
    assert c3 == [{"tenant": "acme", "queued": T0_MS + 2_000, "wait": 4_000, "talk": 30_003}]

    dlq = KafkaConsumer(kafka.dead_letter_topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                        consumer_timeout_ms=5_000)
    letters = [orjson.loads(m.value) for m in dlq]
    dlq.close()
    assert sorted(d["reason"] for d in letters) == ["invalid-event", "invalid-json"]
    assert all(d["stage"] == "sink-validate" and d["topic"] == kafka.events_topic for d in letters)
    assert "tenant_id" in next(d for d in letters if d["reason"] == "invalid-event")["detail"]


def test_replaying_the_topic_never_double_counts(kafka, native: NativeClient) -> None:
    migrate(native)
    evs = calls_fixture()
    produce(kafka, [serialize_event(e) for e in evs])
    for group in ("first", "replay"):  # the replay group re-reads the whole topic from offset 0
        service = make_service(kafka, Sink(native), group)
        run_until(service, lambda s=service: s.stats["events"] >= len(evs))
    assert native.query("SELECT count() AS n FROM events_raw")[0]["n"] == 2 * len(evs)
    assert native.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == len(evs)
    per_call = native.query(
        "SELECT call_id, max(answer_wait_ms) AS wait, countIf(bridge_ms IS NOT NULL) AS segs "
        "FROM calls_partial FINAL GROUP BY call_id ORDER BY call_id")
    assert len(per_call) == 20
    assert all(r["segs"] == 1 for r in per_call)
    assert sum(r["wait"] for r in per_call) == sum(1_000 * (i + 1) for i in range(20))


class Crash(BaseException):
    """Simulates the process dying: not an Exception, so no retry catches it."""


class CrashAfterInsert(Sink):
    def write_rows(self, batch, token=None):  # type: ignore[no-untyped-def]
        super().write_rows(batch, token)
        raise Crash  # inserted, but the offsets will never be committed


def test_crash_between_insert_and_commit_then_restart(kafka, native: NativeClient) -> None:
    migrate(native)
    evs = calls_fixture()
    produce(kafka, [serialize_event(e) for e in evs])
    crashing = make_service(kafka, CrashAfterInsert(native), "g")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            crashing.run()
        except Crash as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    crashing.consumer.close()
    crashing.dlq.close()
    assert errors, "the first sink should have crashed after its insert"
    assert committed(kafka, "g") == 0
    restarted = make_service(kafka, Sink(native), "g")
    run_until(restarted, lambda: committed(kafka, "g") == len(evs))
    assert native.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == len(evs)
    answered = native.query("SELECT uniqExact(call_id) AS n FROM calls_partial WHERE answered_at IS NOT NULL")
    assert answered[0]["n"] == 20


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sync"])
def test_clickhouse_down_pauses_retries_and_loses_nothing(kafka, tmp_path, pipelined: bool) -> None:
    server = ClickHouseServer(workdir=tmp_path / "ch").start()
    try:
        client = NativeClient(server.host, server.port, "outage")
        migrate(client)
        evs = calls_fixture()
        server.stop()
        produce(kafka, [serialize_event(e) for e in evs])
        service = make_service(kafka, Sink(client), "g", pipelined=pipelined)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while service.stats["retries"] < 3:
            assert time.monotonic() < deadline, "sink never retried"
            time.sleep(0.1)
        assert thread.is_alive() and service.stats["events"] == 0
        assert committed(kafka, "g") == 0
        server.restart()
        deadline = time.monotonic() + 60
        while service.stats["events"] < len(evs):
            assert thread.is_alive(), "sink died during the outage"
            assert time.monotonic() < deadline, f"not recovered: {service.stats}"
            time.sleep(0.1)
        service.stop()
        thread.join(30)
        service.consumer.close()
        service.dlq.close()
        assert client.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == len(evs)
        assert committed(kafka, "g") == len(evs)
        client.close()
    finally:
        server.close()


def _with(value: bytes, event_id: str, **over: Any) -> bytes:
    """A record value with fields replaced (``payload.x`` / ``source.x``), as JSON (ints beyond 64 bits too)."""
    d = orjson.loads(value)
    d["event_id"] = event_id
    for key, v in over.items():
        where, _, name = key.rpartition("__")
        (d[where] if where else d)[name] = v
    return json.dumps(d, separators=(",", ":")).encode()


@pytest.mark.parametrize("decoder", ["native", "python"])
def test_values_the_columns_cannot_hold_are_dead_letters_not_a_batch_retried_forever(
        kafka, native: NativeClient, monkeypatch: pytest.MonkeyPatch, decoder: str) -> None:
    """Regression: schema_version > 255 (UInt8), event_sequence >= 2**64 (UInt64) and times outside
    1970 .. 2299 (UInt64 epoch ms on 18.16) used to pass validation and fail their batch's insert,
    retried forever. Now they are dead letters and the rest of the batch is written at once; the
    values at the edges of the ranges are written as they are."""
    monkeypatch.setenv("CCOD_FS_SINK_DECODER", decoder)
    migrate(native)
    evs = calls_fixture()[:30]
    valid = [serialize_event(e) for e in evs]
    by_type = {e.type: v for e, v in zip(evs, valid, strict=True)}
    offered, answered, ended = by_type["call.offered"], by_type["call.answered"], by_type["call.ended"]
    ids = iter(f"{n:08x}-0000-4000-8000-00000000dddd" for n in range(100))
    poison = {
        next(ids): ("schema_version", _with(offered, "", schema_version=256)),
        next(ids): ("event_sequence", _with(offered, "", source__event_sequence=2**64)),
        next(ids): ("occurred_at", _with(offered, "", occurred_at="1969-12-31T23:59:59.999Z")),
        next(ids): ("occurred_at", _with(offered, "", occurred_at="2300-01-01T00:00:00Z")),
        next(ids): ("answered_at", _with(answered, "", payload__answered_at="2300-01-01T00:00:00.000+00:00")),
        next(ids): ("ended_at", _with(ended, "", payload__ended_at="1900-01-01T00:00:00Z")),
    }
    poison = {eid: (field, _with(v, eid)) for eid, (field, v) in poison.items()}
    max_ms = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z
    edges = {
        next(ids): _with(offered, "", schema_version=255, source__event_sequence=2**64 - 1),
        next(ids): _with(offered, "", occurred_at="1970-01-01T00:00:00Z"),
        next(ids): _with(answered, "", occurred_at="2299-12-31T23:59:59.999999Z",
                         payload__answered_at="2299-12-31T23:59:59.999Z"),
    }
    edges = {eid: _with(v, eid) for eid, v in edges.items()}
    values = valid[:10] + [v for _f, v in poison.values()] + list(edges.values()) + valid[10:]
    produce(kafka, values)
    service = make_service(kafka, Sink(native), "poison")
    assert service.decoder == decoder
    run_until(service, lambda: service.stats["events"] + service.stats["dead_letters"] >= len(values), timeout=45)

    assert service.stats["retries"] == 0, "a batch was retried: something reached ClickHouse that it cannot hold"
    assert service.stats["dead_letters"] == len(poison) and service.stats["events"] == len(valid) + len(edges)
    assert committed(kafka, "poison") == len(values)
    raw = native.query("SELECT toString(event_id) AS id, schema_version, source_sequence, occurred_at "
                       "FROM events_raw FINAL")
    assert {r["id"] for r in raw} == {str(e.event_id) for e in evs} | set(edges)
    got = {r["id"]: r for r in raw}
    ids_ = list(edges)
    assert (got[ids_[0]]["schema_version"], got[ids_[0]]["source_sequence"]) == (255, 2**64 - 1)
    assert got[ids_[1]]["occurred_at"] == 0 and got[ids_[2]]["occurred_at"] == max_ms
    answered_at = native.query(f"SELECT answered_at FROM calls_partial WHERE toString(event_id) = '{ids_[2]}'")
    assert answered_at == [{"answered_at": max_ms}]

    dlq = KafkaConsumer(kafka.dead_letter_topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                        consumer_timeout_ms=5_000)
    letters = [orjson.loads(m.value) for m in dlq]
    dlq.close()
    assert len(letters) == len(poison)
    for letter in letters:
        assert (letter["reason"], letter["stage"]) == ("invalid-event", "sink-validate")
        eid = json.loads(base64.b64decode(letter["raw_b64"]))["event_id"]  # stdlib: ints beyond 64 bits
        assert poison[eid][0] in letter["detail"], letter
    assert {json.loads(base64.b64decode(d["raw_b64"]))["event_id"] for d in letters} == set(poison)


class FlakySink(Sink):
    """ClickHouse "down" (every insert raises) until ``up`` is set."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.up = threading.Event()

    def write_rows(self, batch, token=None):  # type: ignore[no-untyped-def]
        if not self.up.is_set():
            raise ConnectionError("clickhouse down (simulated)")
        return super().write_rows(batch, token)


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "sync"])
def test_a_long_outage_pauses_the_assignment_keeps_consuming_and_resumes_without_gaps(
        kafka, native: NativeClient, pipelined: bool) -> None:
    """Small batches: while the writer retries, the consumer's carry fills up to a batch, then the
    assignment is paused (consume keeps the group served); after the outage it resumes from the
    position after the last message returned, and every event arrives exactly once per id."""
    migrate(native)
    evs = calls_fixture()
    produce(kafka, [serialize_event(e) for e in evs] + [None])  # type: ignore[list-item]
    sink = FlakySink(native)
    service = make_service(kafka, sink, "pause", pipelined=pipelined, batch_max_events=10, batch_max_age_s=0.1)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (service._paused and service.stats["retries"] >= 3):
            assert thread.is_alive(), "sink died during the outage"
            assert time.monotonic() < deadline, f"never paused: {service.stats}"
            time.sleep(0.05)
        assert service.stats["events"] == 0 and committed(kafka, "pause") == 0
        assert len(service._carry) <= service.batch_max_events
        sink.up.set()
        deadline = time.monotonic() + 60
        while service.stats["events"] + service.stats["dead_letters"] < len(evs) + 1:
            assert thread.is_alive(), "sink died after the outage"
            assert time.monotonic() < deadline, f"not recovered: {service.stats}"
            time.sleep(0.1)
    finally:
        stop_service(service, thread)
    assert service.stats["events"] == len(evs) and service.stats["dead_letters"] == 1  # the null value
    assert not service._paused
    assert committed(kafka, "pause") == len(evs) + 1
    assert native.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == len(evs)
    dlq = KafkaConsumer(kafka.dead_letter_topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                        consumer_timeout_ms=5_000)
    letters = [orjson.loads(m.value) for m in dlq]
    dlq.close()
    assert len(letters) == 1 and letters[0]["stage"] == "sink-validate", letters


class SlowSink(Sink):
    def write_rows(self, batch, token=None):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return super().write_rows(batch, token)


def test_a_member_joining_mid_stream_rebalances_without_losing_or_double_committing(
        kafka, native: NativeClient, native_factory: Callable[[str | None], NativeClient]) -> None:
    """A second member joins while the first is busy: partitions are revoked with batches unwritten
    or uncommitted; those are re-read by their new owner, and together they commit every offset."""
    migrate(native)
    f = EventFactory()
    evs = []
    for i in range(400):
        evs += call_events(f, tenant=f"t{i % 7}", queue="sales", start=T0, call_id=f"r{i}", agent=f"a{i % 3}",
                           wait_ms=1_000, talk_ms=30_000, ring_ms=500)
    produce(kafka, [serialize_event(e) for e in evs])
    first = make_service(kafka, SlowSink(native), "rebalance", batch_max_events=50, batch_max_age_s=0.1)
    second = make_service(kafka, SlowSink(native_factory(native.database)), "rebalance", batch_max_events=50,
                          batch_max_age_s=0.1)
    threads = [threading.Thread(target=first.run, daemon=True), threading.Thread(target=second.run, daemon=True)]
    threads[0].start()
    try:
        deadline = time.monotonic() + 30
        while first.stats["events"] < 100:
            assert time.monotonic() < deadline, f"first member never started: {first.stats}"
            time.sleep(0.05)
        threads[1].start()
        deadline = time.monotonic() + 90
        while committed(kafka, "rebalance") < len(evs):
            assert all(t.is_alive() for t in threads), "a sink died"
            assert time.monotonic() < deadline, f"not all committed: {first.stats} {second.stats}"
            time.sleep(0.2)
    finally:
        stop_services((first, second), threads)
    assert second.stats["events"] > 0, "the second member never got partitions"
    assert first.stats["events"] + second.stats["events"] >= len(evs)
    assert committed(kafka, "rebalance") == len(evs)
    assert native.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == len(evs)


class StallingConsumer(SinkConsumer):
    """A consumer whose loop stalls, once armed, at the first ``consume`` while the service holds a
    sealed batch not committed yet, as behind a call hanging in the loop. librdkafka heartbeats from
    its own thread, so it is ``max.poll.interval.ms`` that runs out, not the session: librdkafka
    leaves the group and serves the loss (``on_lost``) at the next ``consume``."""

    def __init__(self, config: dict[str, Any], topics: list[str]) -> None:
        super().__init__(config, topics)
        self.service: SinkService | None = None
        self.armed = threading.Event()
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.held: list[Any] = []  # the service's uncommitted batches when it stalled
        self.held_offsets: dict[tuple[str, int], int] = {}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]:
        service = self.service
        if self.armed.is_set() and not self.stalled.is_set() and service is not None and service._open:
            self.held = list(service._open)
            self.held_offsets = {tp: offset for sealed in self.held for tp, offset in sealed.offsets.items()}
            self.stalled.set()
            self.release.wait(60)
        return super().consume(num_messages=num_messages, timeout=timeout)


_COORDINATOR_NOT_READY = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                          KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT, KafkaError._TRANSPORT)


def group_stable(admin: AdminClient, kafka, group: str, members: int) -> bool:
    """The broker's view: the group is Stable with ``members`` members, each holding partitions.

    Not yet while its coordinator is still being found or loaded (``NOT_COORDINATOR`` and the like).
    """
    name = f"{group}-{kafka.events_topic}"
    try:
        described = admin.describe_consumer_groups([name], request_timeout=10)[name].result(timeout=15)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and (error.code() in _COORDINATOR_NOT_READY or error.retriable()):
            return False
        raise
    return (described.state == ConsumerGroupState.STABLE and len(described.members) == members
            and all(m.assignment.topic_partitions for m in described.members))


def wait_for(what: str, done: Callable[[], bool], threads: list[threading.Thread], timeout: float,
             detail: Callable[[], object] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert all(t.is_alive() for t in threads), f"a sink died while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {detail()}"
        time.sleep(0.1)


def test_a_member_whose_assignment_is_lost_commits_none_of_it_and_its_successor_reads_it_again(
        kafka, native: NativeClient, native_factory: Callable[[str | None], NativeClient]) -> None:
    """librdkafka's on_lost: the first member's loop stalls past ``max.poll.interval.ms`` (6 s) while it
    holds a sealed, uncommitted batch, so librdkafka takes it out of the group and the second member
    gets every partition and commits every offset. When the stall ends the lost callback drops the
    held batch's offsets before it is reaped: nothing is committed over the successor's offsets,
    nothing is lost, nothing is counted twice."""
    migrate(native)
    group = f"lost-{kafka.events_topic}"
    f = EventFactory()
    evs = []
    for i in range(100):
        evs += call_events(f, tenant=f"t{i % 7}", queue="sales", start=T0, call_id=f"l{i}", agent=f"a{i % 3}",
                           wait_ms=1_000, talk_ms=30_000, ring_ms=500)
    # 6 s: the broker's smallest session (group.min.session.timeout.ms); max.poll.interval.ms >= it
    consumer = StallingConsumer(consumer_config(kafka, group, session_timeout_ms=6_000, max_poll_interval_ms=6_000,
                                                heartbeat_interval_ms=500), [kafka.events_topic])
    first = SinkService(consumer, build_dlq_producer(kafka), Sink(native), dead_letter_topic=kafka.dead_letter_topic,
                        origin=group, batch_max_events=50, batch_max_age_s=0.1, retry_max_backoff_s=1.0)
    consumer.service = first
    second = make_service(kafka, Sink(native_factory(native.database)), "lost", batch_max_events=50,
                          batch_max_age_s=0.1)
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    threads = [threading.Thread(target=s.run, daemon=True) for s in (first, second)]
    for t in threads:
        t.start()
    try:
        wait_for("both members to hold partitions", lambda: group_stable(admin, kafka, "lost", 2), threads, 30)
        consumer.armed.set()
        produce(kafka, [serialize_event(e) for e in evs])
        wait_for("the first member to stall holding a batch", consumer.stalled.is_set, threads, 30,
                 lambda: first.stats)
        assert consumer.held_offsets, "the stalled member held no uncommitted offsets"
        # max.poll.interval.ms runs out: librdkafka leaves the group, the second member takes over
        wait_for("the second member to commit every offset", lambda: committed(kafka, "lost") == len(evs),
                 threads, 45, lambda: (committed(kafka, "lost"), first.stats, second.stats))
        assert first.stats["partitions_lost"] == 0, "lost is served in consume, which is still stalled"
        consumer.release.set()
        wait_for("the lost callback and the held batches reaped",
                 lambda: first.stats["partitions_lost"] > 0 and not any(s in first._open for s in consumer.held),
                 threads, 30, lambda: first.stats)
        wait_for("the first member back in the group", lambda: group_stable(admin, kafka, "lost", 2), threads, 30)
    finally:
        consumer.release.set()
        stop_services((first, second), threads)

    assert first.stats["partitions_lost"] >= len(consumer.held_offsets), first.stats
    assert all(not sealed.offsets for sealed in consumer.held), "the lost partitions' offsets were kept"
    assert committed(kafka, "lost") == len(evs), "an offset was committed over the successor's"
    assert native.query("SELECT count() AS n FROM events_raw FINAL")[0]["n"] == len(evs)
    assert native.query("SELECT count() AS n FROM events_raw")[0]["n"] >= len(evs)
    per_call = native.query("SELECT call_id, countIf(bridge_ms IS NOT NULL) AS segs FROM calls_partial FINAL "
                            "GROUP BY call_id")
    assert len(per_call) == 100 and all(r["segs"] == 1 for r in per_call), per_call
