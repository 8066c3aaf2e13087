"""The ingest's JSON hot path: native and Python engines publish the same bytes, resyncs run on the
Python reference with the native state, and bad bodies become dead letters on both."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ccod_fs.bus.memory import MemoryBus
from ccod_fs.esl.frames import iter_frames
from ccod_fs.ingest.node_normalizer import NodeNormalizer
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.ingest.pipeline import IngestPipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
DOMAINS = {"default": "acme", "127.0.0.1": "acme"}


def _bodies(capture: str) -> list[bytes]:
    frames, errors = iter_frames((FIXTURES / capture).read_bytes())
    assert not errors
    return [f.body for f in frames if f.content_type == "text/event-json"]


def _run(native: bool, bodies: list[bytes]) -> tuple[IngestPipeline, MemoryBus]:
    bus = MemoryBus()
    node = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS), native=native)
    assert node.engine == ("native" if native else "python")
    pipeline = IngestPipeline(normalizer=node, publisher=bus, node="fs1", events_topic="ev", dead_letter_topic="dl")
    for body in bodies:
        pipeline.on_json_body(body)
    return pipeline, bus


@pytest.mark.parametrize("capture", ["esl-json-inbound-queue.raw", "esl-json-queue-edge-cases.raw"])
def test_both_engines_publish_the_same_records(capture: str) -> None:
    bodies = _bodies(capture)
    create = next(b for b in bodies if b'"Event-Name":"CHANNEL_CREATE"' in b)
    bad_sequence = create.replace(b'"Event-Sequence":"', b'"Event-Sequence":"x')
    garbage = [b"{not json", b'{"Core-UUID":"x"}', b"\xff\xfe", bad_sequence]
    results = [_run(native, bodies[:40] + garbage + bodies[40:]) for native in (True, False)]
    (p_native, bus_native), (p_python, bus_python) = results
    records = [[(r.key, r.value) for r in bus.read("ev")] for bus in (bus_native, bus_python)]
    assert records[0] == records[1]
    assert len(records[0]) > 50
    letters = [[(x["stage"], x["reason"]) for x in map(orjson.loads, (r.value for r in bus.read("dl")))]
               for bus in (bus_native, bus_python)]
    assert letters[0] == letters[1]
    assert ("esl-decode", "invalid-json") in letters[0]
    assert ("esl-decode", "missing-event-name") in letters[0]
    assert ("normalize", "bad-event-sequence") in letters[0]
    assert p_native.events_in == p_python.events_in == len(bodies) + len(garbage)
    assert p_native.events_out == p_python.events_out == len(records[0])
    assert p_native.dead_lettered == p_python.dead_lettered == len(letters[0])
    assert p_native.lag_seconds() > 0  # read lazily from the newest body's Event-Date-Timestamp
    assert p_native.sequence.core_uuid == p_python.sequence.core_uuid is not None
    assert p_native.sequence.last == p_python.sequence.last > 0


def test_resync_runs_on_the_reference_with_the_native_state_and_hands_it_back() -> None:
    bodies = _bodies("esl-json-inbound-queue.raw")
    node = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS))
    assert node.engine == "native"
    for body in bodies[:60]:  # calls in flight
        node.normalize_json(body)
    in_flight = node.state_snapshot()
    assert in_flight["calls"]["legs"]
    ended = node.resync('{"row_count":0}')  # the switch has no channels any more: every open leg ends
    assert ended and all(tenant == "acme" for tenant, _ in ended)
    assert {orjson.loads(v)["type"] for _, v in ended} == {"call.ended"}
    after = node.state_snapshot()  # the native state now knows those legs ended
    assert after == node.reference.state_snapshot() != in_flight
    assert node.resync('{"row_count":0}') == []  # nothing left to end: nothing emitted twice


def test_restore_feeds_both_engines() -> None:
    bodies = _bodies("esl-json-inbound-queue.raw")
    first = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS))
    for body in bodies[:80]:
        first.normalize_json(body)
    second = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS))
    second.restore(first.state_snapshot())
    assert second.reference.state_snapshot() == second.state_snapshot() == first.state_snapshot()
    assert [second.normalize_json(b) for b in bodies[80:]] == [first.normalize_json(b) for b in bodies[80:]]
