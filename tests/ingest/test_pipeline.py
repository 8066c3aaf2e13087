"""The ingest pipeline on the real captures: events out, dead letters, metrics synced from counts."""

from __future__ import annotations

from pathlib import Path

import orjson

from ccod_fs.bus.memory import MemoryBus
from ccod_fs.esl.decode import decode_capture
from ccod_fs.esl.errors import FrameError
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.ingest.pipeline import IngestPipeline

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch" / "esl-json-inbound-queue.raw"


def test_counts_reach_prometheus_only_when_synced_and_errors_are_dead_lettered() -> None:
    bus = MemoryBus()
    pipeline = IngestPipeline(normalizer=Normalizer(node="fs1"), publisher=bus, node="fs1",
                              events_topic="ev", dead_letter_topic="dl")
    events = decode_capture(CAPTURE)
    for event in events:
        pipeline.on_event(event)
    pipeline.on_error(FrameError("invalid-content-length", "Content-Length '-5'", b"Content-Length: -5"))
    registry = pipeline.metrics.registry

    def metric(name: str) -> float | None:
        return registry.get_sample_value(name, {"node": "fs1"})

    assert pipeline.events_in == len(events) == 398
    assert pipeline.events_out == bus.size("ev") > 0
    assert metric("ccod_ingest_esl_events_in_total") == 0  # nothing per event on the hot path
    pipeline.sync_metrics()
    pipeline.sync_metrics()  # idempotent: only deltas are added
    assert metric("ccod_ingest_esl_events_in_total") == 398
    assert metric("ccod_ingest_events_out_total") == bus.size("ev")
    letters = [orjson.loads(r.value) for r in bus.read("dl")]
    assert [(x["stage"], x["reason"]) for x in letters][-1] == ("esl-frame", "invalid-content-length")
    assert pipeline.lag_seconds() > 0  # the capture's events are in the past
