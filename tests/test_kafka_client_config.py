"""The operator's Kafka client settings (security, compression) reach every client, and the ones
that carry our delivery guarantees cannot be overridden.

The secured broker is real: a KRaft broker with a SASL_PLAINTEXT listener (mechanism PLAIN), the
way managed Kafka asks clients to authenticate.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message
from pydantic import ValidationError

from ccod_fs.bus.kafka_config import RESERVED, check_client_config, resolve_compression
from ccod_fs.devservices.kafka import KafkaBroker
from ccod_fs.devservices.process import ServiceStartError
from ccod_fs.ingest.kafka_topics import TopicSetupError, ensure_topics
from ccod_fs.ingest.publisher import DurablePublisher
from ccod_fs.settings import IngestSettings, KafkaSettings, SinkSettings
from ccod_fs.sink.kafka_client import build_consumer, build_dlq_producer, consumer_config

SASL = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
        "sasl.username": "ccod", "sasl.password": "ccod-secret"}


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(workdir=tmp_path_factory.mktemp("kafka-sasl"), sasl_users={"ccod": "ccod-secret"})
    try:
        broker.start()
    except ServiceStartError as exc:
        broker.close()
        pytest.fail(f"the SASL broker could not start: {exc}", pytrace=False)
    yield broker
    broker.close()


def test_settings_take_client_config_and_compression_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCOD_KAFKA__BOOTSTRAP", "kafka-0:9093")
    monkeypatch.setenv("CCOD_KAFKA__CLIENT_CONFIG", json.dumps({**SASL, "ssl.endpoint.identification.algorithm": "none",
                                                                "socket.keepalive.enable": True}))
    monkeypatch.setenv("CCOD_KAFKA__COMPRESSION", "zstd")
    monkeypatch.setenv("CCOD_ESL__PASSWORD", "pw")
    for settings in (IngestSettings(), SinkSettings()):  # type: ignore[call-arg]
        assert settings.kafka.client_config["sasl.username"] == "ccod"
        assert settings.kafka.client_config["socket.keepalive.enable"] is True
        assert settings.kafka.compression == "zstd"


def test_guarantee_settings_and_malformed_names_are_a_startup_error_naming_each_key() -> None:
    with pytest.raises(ValidationError) as err:
        KafkaSettings(bootstrap="b:9092", client_config={"enable.idempotence": False, "acks": 1,
                                                         "Security Protocol": "SSL", "compression.type": "gzip"})
    text = str(err.value)
    assert "'enable.idempotence' is set by ccod-fs" in text and "'acks' is set by ccod-fs" in text
    assert "'Security Protocol' is not a librdkafka property name" in text
    assert "'compression.type' is set with CCOD_KAFKA__COMPRESSION" in text
    with pytest.raises(ValueError, match=re.escape("'ssl.ca.location' must be a string, number or boolean, not list")):
        check_client_config({"ssl.ca.location": ["/a", "/b"]})
    with pytest.raises(ValidationError):
        KafkaSettings(bootstrap="b:9092", compression="brotli")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="brotli"):
        resolve_compression("brotli")


def test_operator_settings_never_replace_what_the_clients_set_on_purpose() -> None:
    """Even settings built past pydantic's validation cannot weaken the consumer's manual commits."""
    kafka = KafkaSettings(bootstrap="b:9092", client_config=SASL)
    config = consumer_config(kafka, "g")
    assert config["enable.auto.commit"] is False and config["group.id"] == "g"
    assert {key: config[key] for key in SASL} == SASL
    unchecked = KafkaSettings.model_construct(bootstrap="b:9092", client_id="x", events_topic="e",
                                              compression="auto", client_config={"enable.auto.commit": True})
    for build in (lambda: consumer_config(unchecked, "g"), lambda: build_dlq_producer(unchecked),
                  lambda: DurablePublisher(bootstrap="b:9092", spool_dir=Path("/nonexistent"), client_id="x",
                                           client_config=unchecked.client_config)):
        with pytest.raises(ValueError, match=re.escape("'enable.auto.commit' is set by ccod-fs")):
            build()
    assert "enable.auto.commit" in RESERVED


def test_wrong_credentials_fail_topic_setup_with_a_clear_error(sasl_broker: KafkaBroker) -> None:
    with pytest.raises(TopicSetupError, match=sasl_broker.sasl_bootstrap):
        ensure_topics(sasl_broker.sasl_bootstrap, ["sec.never"], timeout_s=5,
                      client_config={**SASL, "sasl.password": "wrong"})


def test_ingest_publisher_and_sink_clients_work_through_an_authenticated_listener(
        sasl_broker: KafkaBroker, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(bootstrap=sasl_broker.sasl_bootstrap, events_topic=f"sec.events.{suffix}",
                          dead_letter_topic=f"sec.dlq.{suffix}", client_id="sec", compression="zstd",
                          client_config=SASL)
    ensure_topics(kafka.bootstrap, {kafka.events_topic: 3, kafka.dead_letter_topic: 1},
                  client_config=kafka.client_config)

    pub = DurablePublisher(bootstrap=kafka.bootstrap, spool_dir=tmp_path, client_id="sec-ingest",
                           compression=kafka.compression, client_config=kafka.client_config)
    pub.start()
    n = 600
    for i in range(n):
        pub.publish(kafka.events_topic, f"k{i % 7}".encode(), f"event-{i}".encode())
        if i % 100 == 0:
            pub.poll()
    assert pub.flush(60), f"not acked through the SASL listener: {pub.stats}"
    assert pub.stats.acked == n and pub.stats.kafka_up
    pub.close()

    reports: list[KafkaError | None] = []
    dlq = build_dlq_producer(kafka)
    dlq.produce(kafka.dead_letter_topic, b"a dead letter", on_delivery=lambda err, _msg: reports.append(err))
    assert dlq.flush(30) == 0 and reports == [None]

    consumer = build_consumer(kafka, f"sec-sink-{suffix}")
    consumer.subscribe(consumer.topics)
    seen: set[bytes] = set()
    try:
        for _ in range(300):
            batch: list[Message] = consumer.consume(1000, timeout=0.2)
            for message in batch:
                assert message.error() is None, message.error()
                seen.add(message.value())
            if len(seen) == n:
                break
    finally:
        consumer.close()
    assert seen == {f"event-{i}".encode() for i in range(n)}
