"""Kafka topic set-up with clear errors (which bootstrap, which topic, what failed).

librdkafka's admin client, so the operator's ``client_config`` (TLS, SASL) reaches it as it
reaches the producer and the consumer.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ccod_fs.bus.kafka_config import check_client_config
from ccod_fs.bus.kafka_log import LibrdkafkaLog

log = structlog.get_logger(__name__)


class TopicSetupError(RuntimeError):
    """Topics could not be created or have no leader."""


def ensure_topics(bootstrap: str, topics: Mapping[str, int] | Iterable[str], *, partitions: int = 4,
                  replication: int = 1, timeout_s: float = 30.0, configs: Mapping[str, str] | None = None,
                  client_config: Mapping[str, Any] | None = None) -> None:
    """Create missing topics (``{name: partitions}`` or names with ``partitions``) and wait for their leaders.

    ``configs`` are topic-level settings for the topics created here (existing ones are left alone);
    ``client_config`` the operator's librdkafka settings (security).
    """
    wanted = dict(topics) if isinstance(topics, Mapping) else {name: partitions for name in topics}
    config: dict[str, Any] = {**check_client_config(client_config or {}), "bootstrap.servers": bootstrap,
                              "client.id": "ccod-ensure-topics", "logger": LibrdkafkaLog("ccod-ensure-topics")}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise TopicSetupError(f"Kafka at {bootstrap} is unreachable: {exc.args[0]!r}") from exc
    missing = [NewTopic(name, count, replication, config=dict(configs or {}))
               for name, count in wanted.items() if name not in existing]
    if missing:
        futures = admin.create_topics(missing, request_timeout=timeout_s, operation_timeout=timeout_s)
        for name, future in futures.items():
            try:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # created concurrently by someone else: fine
                raise TopicSetupError(f"creating topic {name!r} on {bootstrap}: {error!r}") from exc
            except concurrent.futures.TimeoutError as exc:
                raise TopicSetupError(f"creating topic {name!r} on {bootstrap}: {exc!r}") from exc
        log.info("kafka.topics_created", topics=[t.topic for t in missing], bootstrap=bootstrap)
    while True:
        try:
            meta = admin.list_topics(timeout=max(0.5, deadline - time.monotonic())).topics
        except KafkaException:
            meta = {}
        ready = [name for name in wanted if name in meta and meta[name].error is None and meta[name].partitions
                 and all(p.leader >= 0 for p in meta[name].partitions.values())]
        if len(ready) == len(wanted):
            return
        if time.monotonic() > deadline:
            raise TopicSetupError(f"topics {sorted(wanted)} have no leaders after {timeout_s}s on {bootstrap}")
        time.sleep(0.2)
