"""The sink's librdkafka clients: the event consumer and the dead-letter producer, configured.

Why librdkafka (``confluent_kafka``), as the ingest's publisher: its C core fetches and parses
record batches off the Python thread (any compression included), and it heartbeats from its own
thread, so a long insert or a ClickHouse outage never costs the group membership.
"""

from __future__ import annotations

from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, Producer

from ccod_fs.bus.kafka_config import check_client_config, librdkafka_names, resolve_compression
from ccod_fs.bus.kafka_log import LibrdkafkaLog
from ccod_fs.settings import KafkaSettings

log = structlog.get_logger(__name__)

_QUIET_ERRORS = (KafkaError._TRANSPORT, KafkaError._RESOLVE)  # librdkafka's own log has them
DLQ_MESSAGE_TIMEOUT_S = 30.0  # a dead letter not acknowledged by then is reported failed and sent again


class SinkConsumer(Consumer):  # type: ignore[misc]
    """A librdkafka consumer that knows its topics: the service subscribes with its rebalance callbacks."""

    def __init__(self, config: dict[str, Any], topics: list[str]) -> None:
        super().__init__(config)
        self.topics = topics


def log_kafka_error(error: KafkaError) -> None:
    """``error_cb`` of both clients: librdkafka recovers by itself; these are health signals only."""
    if error.code() in _QUIET_ERRORS:
        return
    log.warning("sink.kafka_error", code=error.name(), error=error.str(), fatal=error.fatal())


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """The consumer's librdkafka settings, and why.

    - ``enable.auto.commit=false``: the service commits explicit offsets after the insert (at least once).
    - The fetch sizes let one ``consume`` return a full batch (50,000 events of ~0.5 kB) across
      partitions; ``fetch.queue.backoff.ms`` low so the prefetch queue refills while a batch is
      inserted instead of pausing a whole second once it ran over ``queued.min.messages``.
    - ``session.timeout.ms=10000``: a crashed sink's partitions move to another member within 10 s
      (librdkafka's default is 45 s); heartbeats come from librdkafka's thread, so a long insert
      never trips it.
    - ``check.crcs`` stays librdkafka's default (false): the broker verified every batch's CRC
      when it was produced and TCP checksums the transfer; a corrupt value would still fail JSON
      and contract validation and become a dead letter, never a silent row.
    """
    fetch_max_bytes = 64 * 1024 * 1024
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap,
        "group.id": group_id,
        "client.id": f"{kafka.client_id}-sink",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "fetch.max.bytes": fetch_max_bytes,
        "receive.message.max.bytes": fetch_max_bytes + 512,
        "max.partition.fetch.bytes": 16 * 1024 * 1024,
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": 100,
        "fetch.queue.backoff.ms": 20,
        "log.connection.close": False,
        "error_cb": log_kafka_error,
        "logger": LibrdkafkaLog(f"{kafka.client_id}-sink"),
    }
    config.update(check_client_config(kafka.client_config))  # the operator's (security)
    config.update(librdkafka_names(overrides))
    return config


def build_consumer(kafka: KafkaSettings, group_id: str, **overrides: Any) -> SinkConsumer:
    """The sink's consumer of ``kafka.events_topic``; ``overrides`` in librdkafka names (``_`` for ``.``)."""
    return SinkConsumer(consumer_config(kafka, group_id, **overrides), [kafka.events_topic])


def build_dlq_producer(kafka: KafkaSettings) -> Producer:
    """Dead letters with ``acks=all``; each is confirmed or reported failed within ``DLQ_MESSAGE_TIMEOUT_S``."""
    client_id = f"{kafka.client_id}-sink-dlq"
    return Producer({
        **check_client_config(kafka.client_config),
        "bootstrap.servers": kafka.bootstrap,
        "client.id": client_id,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": resolve_compression(kafka.compression),
        "message.timeout.ms": int(DLQ_MESSAGE_TIMEOUT_S * 1000),
        "log.connection.close": False,
        "error_cb": log_kafka_error,
        "logger": LibrdkafkaLog(client_id),
    })
