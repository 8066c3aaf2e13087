"""librdkafka's log lines as structlog events, for every librdkafka client here (publisher, sink).

Its own module so the sink (and the benchmarks) need not import the ingest's publisher for it.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog


class LibrdkafkaLog:
    """librdkafka's log lines (served by ``poll()``, on the caller's thread) as structlog events."""

    def __init__(self, client_id: str) -> None:
        self._log = structlog.get_logger("librdkafka").bind(client_id=client_id)

    def log(self, level: int, fmt: str, *args: Any) -> None:
        facility, message = (str(args[0]), str(args[-1])) if len(args) >= 2 else ("", fmt % args)
        if facility == "CONFWARN" and "experimental" in message:
            # enable.gapless.guarantee is chosen knowingly (see ccod_fs.ingest.publisher.producer_config)
            level = logging.DEBUG
        self._log.log(level, "librdkafka.log", facility=facility, message=message)
