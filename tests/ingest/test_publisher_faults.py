"""Fault tests on a private Kafka broker (killed and restarted here, so shared tests are not disturbed)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from test_publisher_kafka import assert_exactly_once_in_order, poll_until_kafka_up, read_topic, record

from ccod_fs.devservices import KafkaBroker
from ccod_fs.ingest.kafka_topics import ensure_topics
from ccod_fs.ingest.publisher import DurablePublisher


@pytest.fixture
def broker(private_kafka: KafkaBroker) -> KafkaBroker:
    """This module's own broker (tests/conftest.py ``private_kafka``)."""
    return private_kafka


def _pump_for(pub: DurablePublisher, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pub.poll()
        time.sleep(0.01)


def test_broker_sigkill_mid_stream_loses_nothing_and_keeps_key_order(
        broker: KafkaBroker, unique_topic: str, tmp_path: Path) -> None:
    ensure_topics(broker.bootstrap, {unique_topic: 4})
    # small windows so the outage overflows memory and the backlog is read back from disk
    pub = DurablePublisher(bootstrap=broker.bootstrap, spool_dir=tmp_path, client_id="fault-kill",
                           max_inflight_bytes=512 * 1024, max_cached_bytes=256 * 1024,
                           stall_after_s=1.0, segment_bytes=512 * 1024)
    pub.start()
    n = 20_000
    killed_at = 5_000
    down_s = 6.0
    outage_max_inflight = 0
    for i in range(n):
        if i == killed_at:
            broker.kill()
            down_since = time.monotonic()
        if i >= killed_at and time.monotonic() - down_since < down_s:
            time.sleep(down_s / (n - killed_at) / 2)  # spread the rest over the outage
        pub.publish(unique_topic, *record(i))
        if i % 100 == 0:
            pub.poll()
            if i > killed_at:
                outage_max_inflight = max(outage_max_inflight, pub._inflight_bytes)
    _pump_for(pub, max(0.0, down_s - (time.monotonic() - down_since)))
    during = pub.stats
    assert not during.kafka_up, "an outage must show in stats"
    assert during.spooled_unacked >= n - killed_at - 1000
    assert outage_max_inflight <= 512 * 1024 + 400, "memory stays bounded while Kafka is down"

    broker.restart()
    assert pub.flush(180), f"not everything acked after the broker came back: {pub.stats}"
    after = pub.stats
    pub.close()
    assert after.kafka_up and after.acked == n and after.spooled_unacked == 0
    assert after.replayed > 0, "the backlog beyond the memory window came from the spool"
    assert_exactly_once_in_order(read_topic(broker.bootstrap, unique_topic), n)


def test_kafka_down_at_start_then_back(broker: KafkaBroker, unique_topic: str, tmp_path: Path) -> None:
    ensure_topics(broker.bootstrap, {unique_topic: 4})
    broker.kill()
    pub = DurablePublisher(bootstrap=broker.bootstrap, spool_dir=tmp_path, client_id="fault-start")
    pub.start()
    t0 = time.monotonic()
    for i in range(2000):
        pub.publish(unique_topic, *record(i))
        pub.poll()
    assert time.monotonic() - t0 < 10, "publishing must not wait for Kafka"
    _pump_for(pub, 1.0)
    assert not pub.stats.kafka_up and pub.stats.acked == 0
    assert pub.flush(0.2) is False

    broker.restart()
    for i in range(2000, 3000):
        pub.publish(unique_topic, *record(i))
    assert pub.flush(120), f"not flushed after the broker came back: {pub.stats}"
    assert pub.stats.kafka_up
    pub.close()
    assert_exactly_once_in_order(read_topic(broker.bootstrap, unique_topic), 3000)


def test_idle_publisher_follows_the_broker_down_and_up(broker: KafkaBroker, tmp_path: Path) -> None:
    """Nothing to publish: kafka_up turns False when the broker dies and True when it is back."""
    pub = DurablePublisher(bootstrap=broker.bootstrap, spool_dir=tmp_path, client_id="fault-idle")
    pub.start()
    try:
        assert poll_until_kafka_up(pub, True, 5) is not None
        broker.kill()
        took = poll_until_kafka_up(pub, False, 10)
        assert took is not None and took < 8, f"kafka_up still True {took}s after the kill"
        broker.restart()
        took = poll_until_kafka_up(pub, True, 30)
        assert took is not None, "kafka_up never came back without traffic"
        assert pub.stats.published == 0
    finally:
        pub.close(timeout=1)


def test_idle_publisher_sees_a_frozen_broker_through_the_probe(broker: KafkaBroker, tmp_path: Path) -> None:
    """SIGSTOP: connections stay open and nothing answers, so librdkafka reports no broker down for a
    minute (socket.timeout.ms); the metadata probe's timeout turns kafka_up False within seconds."""
    pub = DurablePublisher(bootstrap=broker.bootstrap, spool_dir=tmp_path, client_id="fault-frozen",
                           idle_probe_interval_s=1.0, probe_timeout_s=1.0)
    pub.start()
    assert broker.pid is not None
    try:
        assert poll_until_kafka_up(pub, True, 5) is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            took = poll_until_kafka_up(pub, False, 15)
            assert took is not None and took < 5, f"kafka_up still True {took}s after the freeze"
            assert pub.stats.last_error is not None and "metadata probe" in pub.stats.last_error
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        took = poll_until_kafka_up(pub, True, 30)
        assert took is not None, "kafka_up never came back after the broker resumed"
    finally:
        pub.close(timeout=1)
