"""DurablePublisher against the shared real Kafka broker: delivery, order, crash replay, no blocking."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ccod_fs.ingest.kafka_handoff import BatchHandoff, producer_config
from ccod_fs.ingest.kafka_topics import TopicSetupError, ensure_topics
from ccod_fs.ingest.publisher import DurablePublisher
from ccod_fs.ingest.spool import Spool

REPO = Path(__file__).parents[2]


def record(i: int, keys: int = 50) -> tuple[bytes, bytes]:
    """Record ``i``: key ``k<i % keys>``, value carrying the global id and the per-key index."""
    key = b"k%d" % (i % keys)
    return key, b'{"id":%d,"key":"%s","n":%d,"pad":"%s"}' % (i, key, i // keys, b"x" * 300)


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    """Every record of ``topic`` up to the current end offsets, per partition in offset order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest")
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[TopicPartition, list[tuple[bytes, bytes]]] = defaultdict(list)
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read the topic to its end"
            for tp, messages in consumer.poll(timeout_ms=500).items():
                out[tp].extend((m.key, m.value) for m in messages)
        return [kv for tp in tps for kv in out[tp]]
    finally:
        consumer.close()


def ids_by_key(records: list[tuple[bytes, bytes]]) -> dict[bytes, list[int]]:
    seen: dict[bytes, list[int]] = defaultdict(list)
    for key, value in records:
        seen[key].append(int(value.split(b'"id":', 1)[1].split(b",", 1)[0]))
    return seen


def assert_exactly_once_in_order(records: list[tuple[bytes, bytes]], n: int, keys: int = 50) -> None:
    by_key = ids_by_key(records)
    assert sum(len(v) for v in by_key.values()) == n, "every record exactly once"
    for k in range(min(keys, n)):
        assert by_key[b"k%d" % k] == list(range(k, n, keys)), f"key k{k} out of order or incomplete"


def assert_nothing_lost_in_order(records: list[tuple[bytes, bytes]], n: int, keys: int = 50) -> None:
    """At least once: every id < n present; per key, first occurrences in publish order."""
    for k, ids in ids_by_key(records).items():
        first_seen = list(dict.fromkeys(ids))
        assert first_seen == sorted(first_seen), f"key {k!r}: a newer record overtook an older one"
    present = {i for ids in ids_by_key(records).values() for i in ids}
    missing = set(range(n)) - present
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:10]}"


def dead_bootstrap() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("fast_handoff", [True, False], ids=["batch-handoff", "send"])
def test_delivers_everything_once_in_key_order_and_empties_the_spool(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path, fast_handoff: bool) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 4})
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-pub",
                           segment_bytes=256 * 1024, fast_handoff=fast_handoff)
    pub.start()
    n = 5000
    for i in range(n):
        pub.publish(unique_topic, *record(i))
        if i % 50 == 0:
            pub.poll()
    assert pub.flush(60)
    assert (pub._handoff is not None) is fast_handoff, "the mode under test was really used"
    stats = pub.stats
    assert (stats.published, stats.acked, stats.spooled_unacked, stats.replayed) == (n, n, 0, 0)
    assert stats.kafka_up and stats.last_error is None
    pub.close()

    assert_exactly_once_in_order(read_topic(kafka_bootstrap, unique_topic), n)
    assert len(list(tmp_path.glob("*.seg"))) <= 1, "acked segments are deleted"
    spool = Spool(tmp_path)
    spool.open()
    assert spool.unacked == 0 and spool.next_seq == n
    spool.close()


def test_publish_never_blocks_and_stays_bounded_when_kafka_is_unreachable(tmp_path: Path) -> None:
    pub = DurablePublisher(bootstrap=dead_bootstrap(), spool_dir=tmp_path, client_id="test-down",
                           max_cached_bytes=256 * 1024)
    pub.start()
    slowest = 0.0
    started = time.monotonic()
    for i in range(3000):
        t0 = time.monotonic()
        pub.publish("t.unreachable", *record(i))
        pub.poll()
        slowest = max(slowest, time.monotonic() - t0)
    assert time.monotonic() - started < 10
    assert slowest < 0.5, f"publish/poll blocked for {slowest:.3f}s"  # a wait on Kafka would be >= 5 s
    stats = pub.stats
    assert stats.published == 3000 and stats.spooled_unacked == 3000 and stats.acked == 0
    assert not stats.kafka_up
    assert pub._cache_bytes <= 256 * 1024 and not pub._cache_valid, "the backlog lives on disk, not in memory"

    t0 = time.monotonic()
    assert pub.flush(0.5) is False
    pub.close(timeout=0.5)
    assert time.monotonic() - t0 < 5
    spool = Spool(tmp_path)
    spool.open()
    assert (spool.acked_seq, spool.next_seq) == (0, 3000), "everything still spooled for the next start"
    spool.close()


_CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.ingest.test_publisher_kafka import record
from ccod_fs.ingest.publisher import DurablePublisher
from ccod_fs.logs import configure_logging
configure_logging("WARNING")  # logs to stderr: stdout carries only the POLLED lines
pub = DurablePublisher(bootstrap={bootstrap!r}, spool_dir=Path({spool!r}), client_id="child")
pub.start()
i = {start}
while True:
    pub.publish({topic!r}, *record(i))
    i += 1
    if i % 100 == 0:
        pub.poll()
        print("POLLED", i - {start}, flush=True)
        time.sleep(0.002)
"""


def _run_child_until(bootstrap: str, topic: str, spool: Path, at_least: int, start: int = 0) -> int:
    """Run a publisher in a child process (ids from ``start``), SIGKILL it once it polled ``at_least``."""
    code = textwrap.dedent(_CHILD.format(repo=str(REPO), bootstrap=bootstrap, spool=str(spool), topic=topic,
                                         start=start))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    polled = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("POLLED "):
                continue  # the child's own log lines
            polled = int(line.split()[1])
            if polled >= at_least:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert polled >= at_least, "child publisher died early"
    return polled


@pytest.mark.parametrize("kafka_during_crash", ["down", "up"])
def test_sigkilled_publisher_loses_nothing_after_restart(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path, kafka_during_crash: str) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 4})
    child_bootstrap = dead_bootstrap() if kafka_during_crash == "down" else kafka_bootstrap
    polled = _run_child_until(child_bootstrap, unique_topic, tmp_path, 3000)

    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="restarted")
    pub.start()
    pub.publish(unique_topic, *record(10**9))  # new records queue behind the replay
    assert pub.flush(60)
    stats = pub.stats
    pub.close()
    records = read_topic(kafka_bootstrap, unique_topic)
    assert ids_by_key(records)[record(10**9)[0]][-1] == 10**9, "the new record comes after the replayed ones"
    records = [r for r in records if b'"id":1000000000,' not in r[1]]
    if kafka_during_crash == "down":
        # nothing was acked before the crash: the replay is the only delivery, so exactly once
        assert len(records) >= polled
        assert_exactly_once_in_order(records, len(records))
        # each spooled record read back once; the new one too, it queued behind them on disk
        assert stats.replayed == len(records) + 1
    else:
        assert_nothing_lost_in_order(records, polled)


def test_publisher_killed_twice_mid_stream_loses_nothing(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 4})
    first = _run_child_until(kafka_bootstrap, unique_topic, tmp_path, 4000)
    second = _run_child_until(kafka_bootstrap, unique_topic, tmp_path, 4000, start=100_000)
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="after-two-crashes")
    pub.start()
    assert pub.flush(60)
    pub.close()
    records = read_topic(kafka_bootstrap, unique_topic)
    by_key = ids_by_key(records)
    present = {i for ids in by_key.values() for i in ids}
    expected = set(range(first)) | set(range(100_000, 100_000 + second))
    assert not expected - present, f"lost {len(expected - present)} records across two crashes"
    for key, ids in by_key.items():
        first_seen = list(dict.fromkeys(ids))
        assert first_seen == sorted(first_seen), f"key {key!r} out of order across crashes"


def test_ensure_topics_creates_once_and_explains_failures(kafka_bootstrap: str, unique_topic: str) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 3})
    ensure_topics(kafka_bootstrap, {unique_topic: 3})  # idempotent
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap)
    try:
        assert consumer.partitions_for_topic(unique_topic) == {0, 1, 2}
    finally:
        consumer.close()
    bad = dead_bootstrap()
    with pytest.raises(TopicSetupError, match=bad):
        ensure_topics(bad, ["t.never"], timeout_s=3)


def test_batch_handoff_picks_the_same_partition_as_send(kafka_bootstrap: str, unique_topic: str) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 6})
    producer = KafkaProducer(**producer_config(kafka_bootstrap, "test-partitions"))
    try:
        producer.partitions_for(unique_topic)
        handoff = BatchHandoff(producer)
        assert BatchHandoff.supported(producer)
        for i in range(2000):
            key = b"tenant-%d:call-%d" % (i % 7, i)
            expected = producer._partition(unique_topic, None, key, None, key, None)
            assert handoff.partition(unique_topic, key) == expected
            assert handoff.partition(unique_topic, key) == expected  # cached answer too
    finally:
        producer.close()


def test_broker_side_batch_split_falls_back_to_send_without_loss(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    # the topic refuses record batches over 16 KiB, the producer builds up to 256 KiB
    ensure_topics(kafka_bootstrap, {unique_topic: 2}, configs={"max.message.bytes": "16384"})
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-split")
    pub.start()
    n = 3000
    for i in range(n):
        pub.publish(unique_topic, *record(i))
        if i % 100 == 0:
            pub.poll()
    assert pub.flush(90), f"not drained: {pub.stats}"
    stats = pub.stats
    pub.close()
    assert pub.fast_handoff is False and "split" in (stats.last_error or "")
    assert stats.acked >= n and stats.spooled_unacked == 0
    assert_nothing_lost_in_order(read_topic(kafka_bootstrap, unique_topic), n)


@pytest.mark.parametrize("compression", [0, 1])
def test_append_record_writes_the_bytes_kafka_python_would(compression: int) -> None:
    from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

    from ccod_fs.ingest.kafka_handoff import append_record

    rng = random.Random(7)
    ours = MemoryRecordsBuilder(2, compression, 2 * 1024 * 1024)
    theirs = MemoryRecordsBuilder(2, compression, 2 * 1024 * 1024)
    base = 1_764_093_600_000
    appended = 0
    for i in range(5000):
        key = None if i % 9 == 0 else rng.randbytes(rng.choice([0, 5, 40, 200, 20_000]))
        value = rng.randbytes(rng.choice([0, 1, 127, 128, 1000, 16_383, 16_384, 70_000]))
        ts = base + rng.choice([0, 3, -5, 20_000, 10**7])  # later, earlier and far-off clocks
        fits = theirs.append(ts, key, value, []) is not None
        assert append_record(ours, ts, key, value) is fits, f"record {i}: size check differs"
        appended += fits
    assert 50 < appended < 5000, "both the append and the batch-full paths were exercised"
    for builder in (ours, theirs):
        builder.set_producer_state(4242, 3, 17, False)
        builder.close()
    assert bytes(ours.buffer()) == bytes(theirs.buffer())
    batch = next(iter(MemoryRecords(bytes(ours.buffer()))))
    assert len(list(batch)) == appended


def test_records_kafka_could_never_take_are_refused_before_the_spool(tmp_path: Path) -> None:
    pub = DurablePublisher(bootstrap=dead_bootstrap(), spool_dir=tmp_path, client_id="test-refuse")
    pub.start()
    try:
        for topic, key, value in [("bad topic!", b"k", b"v"), ("", b"k", b"v"), ("t", "str-key", b"v"),
                                  ("t", b"k", "str-value"), ("t", b"k", b"x" * 2_000_000)]:
            with pytest.raises(ValueError):
                pub.publish(topic, key, value)  # type: ignore[arg-type]
        pub.publish("t.ok", None, b"v")
        assert pub.stats.published == 1 and pub.stats.spooled_unacked == 1
    finally:
        pub.close(timeout=0.2)
