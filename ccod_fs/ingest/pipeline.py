"""ESL event -> canonical events -> publisher; bad input -> dead letter. No sockets here.

Called on the ESL reader's loop for every event, so it never blocks: the
publisher spools to disk and sends asynchronously.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson
import structlog

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.esl.errors import EslProtocolError, FrameError
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.metrics import IngestMetrics
from ccod_fs.ingest.node_normalizer import NodeNormalizer, Published
from ccod_fs.ingest.normalize import NormalizeError, Normalizer

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, key: bytes, value: bytes) -> None: ...

    def poll(self) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self, timeout: float = 10) -> None: ...


class SequenceWatch:
    """Tracks ``Event-Sequence`` per ``Core-UUID``: restarts and regressions are reported.

    With a filtered subscription FreeSWITCH's global sequence skips the events
    we did not subscribe to, so forward jumps are counted (``skipped``) but are
    only a loss signal on an ``all`` subscription.
    """

    def __init__(self) -> None:
        self.core_uuid: str | None = None
        self.last = -1
        self.skipped = 0

    def observe(self, core_uuid: str | None, sequence: str | None) -> str | None:
        if core_uuid is None or sequence is None or not sequence.isdigit():
            return None
        try:
            seq = int(sequence)
        except ValueError:  # '²' passes isdigit() but not int(): not a sequence (the native watch agrees)
            return None
        kind: str | None = None
        if core_uuid != self.core_uuid:
            kind = "core-change" if self.core_uuid is not None else None
            self.core_uuid = core_uuid
        elif seq <= self.last:
            kind = "regression"
        elif seq > self.last + 1:
            self.skipped += seq - self.last - 1
        self.last = seq
        return kind


class IngestPipeline:
    def __init__(
        self,
        *,
        normalizer: Normalizer | NodeNormalizer,
        publisher: Publisher,
        node: str,
        events_topic: str,
        dead_letter_topic: str,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.normalizer = (normalizer if isinstance(normalizer, NodeNormalizer)
                           else NodeNormalizer(normalizer, native=False))
        self.publisher = publisher
        self.node = node
        self.events_topic = events_topic
        self.dead_letter_topic = dead_letter_topic
        self.metrics = metrics or IngestMetrics()
        self.sequence = SequenceWatch()
        self.events_in = 0
        self.events_out = 0
        self.dead_lettered = 0
        self._last_ts = ""  # Event-Date-Timestamp of the newest event, parsed only when lag is read
        self._native_ts: str | None = None  # the native reader's newest, as last taken over
        self._m_in = self.metrics.esl_events_in.labels(node)
        self._m_out = self.metrics.events_out.labels(node)
        self._synced_in = 0
        self._synced_out = 0

    # ---- the native reader's hooks (NativeEventReader: frames, decode and normalize in Rust) ----

    def published_event(self, items: Published) -> None:
        """An event-json frame the native core normalized: its (tenant, value) pairs."""
        self.events_in += 1
        self.publish_all(items)

    def event_failed(self, body: bytes, exc: Exception) -> None:
        """An event-json frame that raised: a decode error (not an event) or a normalize error."""
        if isinstance(exc, EslProtocolError):
            self.on_error(exc)
            return
        self.events_in += 1
        self._normalize_failed(body, exc)

    def watch_native_sequence(self, native: Any) -> None:
        """After a native read: the anomalies of its sequence watch, its state, the newest timestamp."""
        for kind, sequence in native.take_sequence_anomalies():
            self._sequence_anomaly(kind, sequence)
        watch = self.sequence
        watch.core_uuid, watch.last, watch.skipped = (
            native.sequence_core_uuid, native.sequence_last, native.sequence_skipped)
        ts = native.last_event_timestamp
        if ts is not None and ts != self._native_ts:  # only a new one: a plain event's may be newer
            self._native_ts = self._last_ts = ts

    def _normalize_failed(self, raw: bytes, exc: Exception) -> None:
        if isinstance(exc, NormalizeError):
            self.dead_letter("normalize", exc.reason, exc.detail, raw)
            return
        # Not a NormalizeError: a gap in the normalizer's own checks. Dead-lettered, never a crash.
        log.error("ingest.normalize_crashed", node=self.node, error=repr(exc)[:200])
        self.dead_letter("normalize", "unexpected-error", repr(exc), raw)

    def on_event(self, event: EslEvent) -> None:
        """An event decoded in Python (``text/event-plain``)."""
        self.events_in += 1
        kind = self.sequence.observe(event.get("Core-UUID"), event.get("Event-Sequence"))
        if kind is not None:
            self._sequence_anomaly(kind, event.get("Event-Sequence"))
        ts = event.get("Event-Date-Timestamp")
        if ts is not None:
            self._last_ts = ts
        try:
            items = self.normalizer.normalize_event(event)
        except Exception as exc:
            self._normalize_failed(orjson.dumps({"headers": event.headers, "body": event.body}), exc)
            return
        self.publish_all(items)

    def _sequence_anomaly(self, kind: str, sequence: str | None) -> None:
        self.metrics.sequence_gaps.labels(self.node, kind).inc()
        log.warning("esl.sequence_anomaly", node=self.node, kind=kind, sequence=sequence)

    def publish_all(self, items: Published) -> None:
        publish, topic = self.publisher.publish, self.events_topic
        for tenant, value in items:
            publish(topic, tenant.encode(), value)
        self.events_out += len(items)

    def on_error(self, error: EslProtocolError) -> None:
        stage = "esl-frame" if isinstance(error, FrameError) else "esl-decode"
        self.dead_letter(stage, error.reason, error.detail, error.raw)

    def dead_letter(self, stage: str, reason: str, detail: str, raw: bytes) -> None:
        self.dead_lettered += 1
        self.metrics.dead_letters.labels(self.node, stage, reason).inc()
        log.warning("ingest.dead_letter", node=self.node, stage=stage, reason=reason, detail=detail[:200])
        letter = DeadLetter.of(stage=stage, reason=reason, detail=detail, origin=self.node, raw=raw)
        self.publisher.publish(self.dead_letter_topic, self.node.encode(), letter.to_json())

    def sync_metrics(self) -> None:
        """Move the in/out counts into Prometheus; called from housekeeping, not per event (hot path)."""
        self._m_in.inc(self.events_in - self._synced_in)
        self._m_out.inc(self.events_out - self._synced_out)
        self._synced_in, self._synced_out = self.events_in, self.events_out

    def lag_seconds(self) -> float:
        if not self._last_ts.isdigit():
            return 0.0
        return max(0.0, time.time() - int(self._last_ts) / 1e6)
