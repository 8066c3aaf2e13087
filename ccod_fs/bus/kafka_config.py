"""librdkafka settings shared by every Kafka client here: keyword overrides and the operator's extras.

Managed Kafka (Amazon MSK, Confluent Cloud, Strimzi with TLS) needs ``security.protocol``,
``sasl.*`` and ``ssl.*``; operators pass those through ``CCOD_KAFKA__CLIENT_CONFIG`` and every
client (the ingest's producer and topic set-up, the sink's consumer and dead-letter producer) gets
them unchanged. The settings that carry our delivery guarantees (idempotence, acks, manual commits,
the group, the callbacks) are ours: an operator setting one is a start-up error, not a silent
weakening of "nothing is ever lost".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

Compression = Literal["auto", "none", "gzip", "snappy", "lz4", "zstd"]
COMPRESSIONS = tuple(c for c in get_args(Compression) if c != "auto")

# What the services set on purpose; the reason is in producer_config / consumer_config.
RESERVED = frozenset({
    "bootstrap.servers", "metadata.broker.list", "client.id", "group.id", "group.instance.id",
    "enable.idempotence", "acks", "request.required.acks", "max.in.flight.requests.per.connection",
    "max.in.flight", "enable.gapless.guarantee", "message.timeout.ms", "delivery.timeout.ms",
    "retries", "message.send.max.retries", "partitioner", "transactional.id",
    "enable.auto.commit", "enable.auto.offset.store", "auto.offset.reset", "isolation.level",
    "compression.type", "compression.codec", "error_cb", "logger", "on_delivery", "on_commit",
    "stats_cb", "throttle_cb", "oauth_cb",
})
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[._][a-z0-9]+)*")
_PYTHON_KEYS = ("logger", "on_delivery")  # confluent-kafka's own keys (and ``*_cb``) keep their names

Scalar = str | int | float | bool


def librdkafka_names(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword overrides in librdkafka's names: ``_`` stands for ``.`` (``linger_ms`` is ``linger.ms``)."""
    return {key if key.endswith("_cb") or key in _PYTHON_KEYS else key.replace("_", "."): value
            for key, value in overrides.items()}


def check_client_config(config: Mapping[str, object]) -> dict[str, Scalar]:
    """The operator's extra librdkafka settings, validated: names as librdkafka spells them,
    scalar values, none of ``RESERVED``. ``ValueError`` names every offending key at once."""
    problems: list[str] = []
    checked: dict[str, Scalar] = {}
    for key, value in config.items():
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            problems.append(f"{key!r} is not a librdkafka property name (e.g. 'security.protocol')")
        elif key in ("compression.type", "compression.codec"):
            problems.append(f"{key!r} is set with CCOD_KAFKA__COMPRESSION, not here")
        elif key in RESERVED:
            problems.append(f"{key!r} is set by ccod-fs for its delivery guarantees and cannot be overridden")
        elif not isinstance(value, str | int | float | bool):
            problems.append(f"{key!r} must be a string, number or boolean, not {type(value).__name__}")
        else:
            checked[key] = value
    if problems:
        raise ValueError("invalid Kafka client_config: " + "; ".join(problems))
    return checked


def resolve_compression(setting: str) -> str:
    """``auto`` -> lz4 when every reader here can decode it, else none; otherwise the codec named.

    The sink consumes with librdkafka, which always has lz4; kafka-python readers (test helpers,
    the benchmarks' baselines, tools built on kafka-python) decode lz4 only with the ``lz4``
    package installed. gzip would cost about half the ingest's throughput.
    """
    if setting == "auto":
        from kafka.codec import has_lz4

        return "lz4" if has_lz4() else "none"
    if setting not in COMPRESSIONS:
        raise ValueError(f"compression must be 'auto' or one of {', '.join(COMPRESSIONS)}, not {setting!r}")
    return setting
