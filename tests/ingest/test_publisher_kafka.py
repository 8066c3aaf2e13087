"""DurablePublisher against the shared real Kafka broker: delivery, order, crash replay, no blocking."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

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
    return [kv for records in read_partitions(bootstrap, topic).values() for kv in records]


def read_partitions(bootstrap: str, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    """Every record of ``topic`` up to the current end offsets, by partition, in offset order."""
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
        return {tp.partition: out[tp] for tp in tps}
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


def test_delivers_everything_once_in_key_order_and_empties_the_spool(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 4})
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-pub",
                           segment_bytes=256 * 1024)
    pub.start()
    n = 5000
    for i in range(n):
        pub.publish(unique_topic, *record(i))
        if i % 50 == 0:
            pub.poll()
    assert pub.flush(60)
    assert pub._generation == 1, "one producer did it all: no failure, no rewind"
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
                           max_cached_bytes=256 * 1024, max_inflight_bytes=256 * 1024)
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
    assert 0 < pub._inflight_bytes <= 256 * 1024 + 400, "librdkafka holds at most the in-flight window"

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


def test_keys_land_on_the_partitions_kafka_python_and_java_pick(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    # murmur2 like the Java client and kafka-python (the previous publisher): a spool replayed
    # across the upgrade, and other producers of the same keys, keep each key on one partition
    ensure_topics(kafka_bootstrap, {unique_topic: 6})
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-partitions")
    pub.start()
    keys = [b"tenant-%d:call-%d" % (i % 7, i) for i in range(600)]
    for key in keys:
        pub.publish(unique_topic, key, b"v")
    assert pub.flush(60)
    pub.close()
    found = {key: part for part, records in read_partitions(kafka_bootstrap, unique_topic).items()
             for key, _ in records}
    assert len(set(found.values())) == 6
    assert found == {key: (murmur2(key) & 0x7FFFFFFF) % 6 for key in keys}


def test_broker_refusing_batches_as_too_large_rewinds_with_smaller_batches_without_loss(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    # The topic refuses record batches over 16 KiB, the producer builds up to 256 KiB: the broker's
    # MESSAGE_TOO_LARGE would leave a gap, which enable.gapless.guarantee turns into a real fatal
    # error; the publisher retires the producer, rewinds and builds smaller batches.
    ensure_topics(kafka_bootstrap, {unique_topic: 2}, configs={"max.message.bytes": "16384"})
    # uncompressed: lz4 would shrink the test's repetitive batches below the broker's limit
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-split", compression="none")
    pub.start()
    n = 3000
    for i in range(n):
        pub.publish(unique_topic, *record(i))
        if i % 100 == 0:
            pub.poll()
    assert pub.flush(90), f"not drained: {pub.stats}"
    stats = pub.stats
    pub.close()
    assert pub._generation > 1 and pub._batch_bytes <= 16 * 1024, "failed producers were replaced"
    assert "MSG_SIZE_TOO_LARGE" in (stats.last_error or "") or "GAPLESS" in (stats.last_error or "")
    assert stats.acked >= n and stats.spooled_unacked == 0
    assert_nothing_lost_in_order(read_topic(kafka_bootstrap, unique_topic), n)


def test_fatal_producer_error_rewinds_to_the_first_unconfirmed_record_and_loses_nothing(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 4})
    # a long linger keeps records queued in librdkafka when the fatal error comes
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-fatal", linger_ms=300)
    pub.start()
    for i in range(1000):
        pub.publish(unique_topic, *record(i))
    assert pub.flush(60)
    n = 4000
    for i in range(1000, n):
        pub.publish(unique_topic, *record(i))
    pub.poll()
    queued = len(pub._producer or ())
    assert queued > 0, "records were with the producer, unconfirmed"
    first = pub._producer
    # librdkafka's error_cb as it reports a fatal idempotence error (the seam librdkafka calls)
    pub._on_error(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "injected fatal error", fatal=True))
    pub.poll()
    # retired, not reused: it may still be finishing in-flight requests, or already be done with them
    # (purged queue, nothing in flight); the new producer waits for the rebuild backoff either way
    assert pub._producer is None, "the failed producer is retired, not reused"
    assert pub._retiring is first or pub._retiring is None, "only the failed producer is retiring"
    assert "injected" in (pub.stats.last_error or "")
    for i in range(n, n + 500):  # publishing goes on while it retires
        pub.publish(unique_topic, *record(i))
        pub.poll()
    assert pub.flush(60), f"not drained after the fatal error: {pub.stats}"
    stats = pub.stats
    pub.close()
    assert pub._generation == 2 and pub._producer is None
    assert stats.replayed > 0, "the unconfirmed tail was read back from the spool and sent again"
    assert stats.acked == n + 500 and stats.spooled_unacked == 0 and stats.kafka_up
    assert_nothing_lost_in_order(read_topic(kafka_bootstrap, unique_topic), n + 500)


def test_full_librdkafka_queue_keeps_the_backlog_on_disk_in_order(
        kafka_bootstrap: str, unique_topic: str, tmp_path: Path) -> None:
    ensure_topics(kafka_bootstrap, {unique_topic: 4})
    # librdkafka takes 50 records at most: produce() raises BufferError, the rest waits in the spool
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-bufferfull",
                           max_cached_bytes=64 * 1024, queue_buffering_max_messages=50)
    pub.start()
    n = 5000
    for i in range(n):
        pub.publish(unique_topic, *record(i))
        if i % 500 == 0:
            pub.poll()
            assert len(pub._producer or ()) <= 50
    assert pub.flush(120), f"not drained: {pub.stats}"
    stats = pub.stats
    pub.close()
    assert pub._queue_full > 0, "librdkafka's queue really was full"
    assert pub._generation == 1, "a full queue is backpressure, not a failure"
    assert stats.replayed > 0, "the backlog was read back from the spool"
    assert (stats.acked, stats.spooled_unacked) == (n, 0)
    assert_exactly_once_in_order(read_topic(kafka_bootstrap, unique_topic), n)


def test_checkpoint_moves_only_over_the_contiguous_prefix_of_delivery_reports(tmp_path: Path) -> None:
    # Reports come per partition in order, across partitions in any order: fed here through the
    # delivery callback (the seam librdkafka calls), out of order and with one failure.
    pub = DurablePublisher(bootstrap=dead_bootstrap(), spool_dir=tmp_path, client_id="test-reports")
    pub.start()
    for i in range(10):
        pub.publish("t.reports", *record(i))
    pub.poll()
    assert pub._send_pos == 10 and pub._inflight_bytes > 0
    size = len(record(0)[1])
    acked_after = []
    for seq in (3, 1, 2, 0, 6, 4, 9, 8):
        pub._on_delivery(seq, size, None, None)
        acked_after.append(pub._acked_pos)
    assert acked_after == [0, 0, 0, 4, 4, 5, 5, 5]
    failed = KafkaError(KafkaError.REQUEST_TIMED_OUT, "injected")
    pub._on_delivery(5, size, failed, None)
    pub._on_delivery(7, size, None, None)
    assert pub._acked_pos == 5 and pub.stats.acked == 5 and pub._done == {6, 7, 8, 9}
    assert pub._fatal is failed, "a failed record replaces the producer"
    pub.close(timeout=0.2)
    spool = Spool(tmp_path)
    spool.open()
    assert (spool.acked_seq, spool.next_seq) == (5, 10), "only the contiguous prefix is checkpointed"
    spool.close()


def test_rewind_skips_records_a_failed_producer_confirmed_beyond_the_gap(tmp_path: Path) -> None:
    pub = DurablePublisher(bootstrap=dead_bootstrap(), spool_dir=tmp_path, client_id="test-skip")
    pub.start()
    for i in range(6):
        pub.publish("t.skip", *record(i))
    pub.poll()
    size = len(record(0)[1])
    for seq in (0, 2, 4):
        pub._on_delivery(seq, size, None, None)
    pub._on_delivery(1, size, KafkaError(KafkaError._PURGE_QUEUE, "injected"), None)
    pub.poll()  # retires the producer
    pub._retire_deadline = 0.0
    while pub._producer is None:
        pub.poll()
        time.sleep(0.01)
    assert pub._generation == 2 and pub._acked_pos == 1 and pub._send_pos == 6
    assert pub._inflight_bytes == 3 * size, "seqs 1, 3, 5 were sent again, 2 and 4 were not"
    for seq in (1, 3, 5):
        pub._on_delivery(seq, size, None, None)
    assert pub._acked_pos == 6 and pub.stats.acked == 6 and not pub._done
    pub.close(timeout=0.2)


def test_health_turns_up_without_traffic_once_a_broker_is_reachable(kafka_bootstrap: str, tmp_path: Path) -> None:
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-idle-up")
    pub.start()
    try:
        deadline = time.monotonic() + 15
        while not pub.stats.kafka_up and time.monotonic() < deadline:
            pub.poll()
            time.sleep(0.05)
        assert pub.stats.kafka_up and pub.stats.published == 0
    finally:
        pub.close()


def poll_until_kafka_up(pub: DurablePublisher, up: bool, seconds: float) -> float | None:
    """Poll (as the ingest's housekeeping does) until ``kafka_up == up``; the seconds it took, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        pub.poll()
        if pub.stats.kafka_up is up:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def test_kafka_up_within_seconds_of_start_with_nothing_to_publish(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The start-up probe answers at once: no waiting for librdkafka statistics or a first ack."""
    pub = DurablePublisher(bootstrap=kafka_bootstrap, spool_dir=tmp_path, client_id="test-start-up")
    assert not pub.stats.kafka_up
    pub.start()
    try:
        took = poll_until_kafka_up(pub, True, 10)
        assert took is not None and took < 3, f"kafka_up after {took}s"
        assert pub.stats.published == 0 and pub.stats.last_error is None
        time.sleep(0.5)  # idle probes keep it up
        assert poll_until_kafka_up(pub, False, 1.5) is None
    finally:
        pub.close()


def test_kafka_up_stays_false_with_nothing_listening(tmp_path: Path) -> None:
    pub = DurablePublisher(bootstrap=dead_bootstrap(), spool_dir=tmp_path, client_id="test-start-down",
                           probe_timeout_s=0.5, probe_interval_s=0.2)
    pub.start()
    try:
        t0 = time.monotonic()
        assert poll_until_kafka_up(pub, True, 3) is None
        assert time.monotonic() - t0 < 4, "probes never block poll()"
        assert pub.stats.last_error is not None
    finally:
        t0 = time.monotonic()
        pub.close(timeout=0.2)
        assert time.monotonic() - t0 < 2, "close does not wait for a probe in flight"


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
