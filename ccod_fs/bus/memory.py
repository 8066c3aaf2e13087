"""An in-process bus with the publisher's interface, for the single-process demo and unit tests.

Records keep publish order per topic; consumers read by offset, like a one-partition log.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    offset: int


class MemoryBus:
    def __init__(self) -> None:
        self._logs: dict[str, list[Record]] = defaultdict(list)

    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        log = self._logs[topic]
        log.append(Record(topic, key, value, len(log)))

    def poll(self) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float = 0) -> None:
        return None

    def read(self, topic: str, offset: int = 0, limit: int | None = None) -> list[Record]:
        log = self._logs[topic]
        end = len(log) if limit is None else min(len(log), offset + limit)
        return log[offset:end]

    def size(self, topic: str) -> int:
        return len(self._logs[topic])
