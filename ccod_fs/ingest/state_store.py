"""The normalizer's state on disk, so a restarted ingest keeps attributing in-flight calls.

Without it a restart forgets which legs belong to which call and tenant: agent legs of
calls already queued would be dead-lettered and ``call.offered`` published twice. The
snapshot is written atomically (temp file + rename) every few seconds and on shutdown,
always after the publisher has taken every event the snapshot has seen.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import structlog

log = structlog.get_logger(__name__)

FILENAME = "normalizer-state.json"


class StateStore:
    def __init__(self, directory: Path, interval_s: float = 2.0) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FILENAME
        self.interval_s = interval_s
        self._last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            # A torn file cannot happen with rename, but a damaged disk can: start fresh, loudly.
            log.error("ingest.state_unreadable", path=str(self.path), error=str(exc))
            return None
        return state if isinstance(state, dict) else None

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(orjson.dumps(state))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._last = time.monotonic()
