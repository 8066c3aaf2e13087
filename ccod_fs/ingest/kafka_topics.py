"""Kafka topic set-up with clear errors (which bootstrap, which topic, what failed)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import structlog
from kafka.errors import KafkaError

log = structlog.get_logger(__name__)


class TopicSetupError(RuntimeError):
    """Topics could not be created or have no leader."""


def ensure_topics(bootstrap: str, topics: Mapping[str, int] | Iterable[str], *, partitions: int = 4,
                  replication: int = 1, timeout_s: float = 30.0, configs: Mapping[str, str] | None = None) -> None:
    """Create missing topics (``{name: partitions}`` or names with ``partitions``) and wait for their leaders.

    ``configs`` are topic-level settings for the topics created here (existing ones are left alone).
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    wanted = dict(topics) if isinstance(topics, Mapping) else {name: partitions for name in topics}
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ccod-ensure-topics",
                                 request_timeout_ms=int(timeout_s * 1000),
                                 bootstrap_timeout_ms=int(timeout_s * 1000))
    except KafkaError as exc:
        raise TopicSetupError(f"Kafka at {bootstrap} is unreachable: {exc!r}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, count, replication, topic_configs=dict(configs or {}))
                   for name, count in wanted.items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing, timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                pass  # created concurrently by someone else: fine
            except KafkaError as exc:
                raise TopicSetupError(f"creating topics {[t.name for t in missing]} on {bootstrap}: {exc!r}") from exc
            log.info("kafka.topics_created", topics=[t.name for t in missing], bootstrap=bootstrap)
        deadline = time.monotonic() + timeout_s
        while True:
            meta = admin.describe_topics(list(wanted))
            ready = [t for t in meta if t.get("error_code", 0) == 0 and t["partitions"]
                     and all(p.get("leader_id", -1) >= 0 for p in t["partitions"])]
            if len(ready) == len(wanted):
                return
            if time.monotonic() > deadline:
                raise TopicSetupError(f"topics {sorted(wanted)} have no leaders after {timeout_s}s on {bootstrap}")
            time.sleep(0.2)
    finally:
        admin.close()
