"""The ingest's JSON hot path: native and Python engines publish the same bytes, resyncs run on the
Python reference with the native state, and bad bodies become dead letters on both."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ccod_fs.bus.memory import MemoryBus
from ccod_fs.esl.connection import EslConnection
from ccod_fs.esl.decode import decode_event
from ccod_fs.esl.errors import EslProtocolError
from ccod_fs.esl.frames import FrameParser, iter_frames
from ccod_fs.ingest.native_reader import NativeEventReader
from ccod_fs.ingest.node_normalizer import NodeNormalizer
from ccod_fs.ingest.normalize import Normalizer
from ccod_fs.ingest.pipeline import IngestPipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
DOMAINS = {"default": "acme", "127.0.0.1": "acme"}


def _bodies(capture: str) -> list[bytes]:
    frames, errors = iter_frames((FIXTURES / capture).read_bytes())
    assert not errors
    return [f.body for f in frames if f.content_type == "text/event-json"]


def _framed(bodies: list[bytes]) -> bytes:
    return b"".join(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(b), b) for b in bodies)


@pytest.mark.parametrize("capture", ["esl-json-inbound-queue.raw", "esl-json-queue-edge-cases.raw"])
def test_both_engines_publish_the_same_records(capture: str) -> None:
    bodies = _bodies(capture)
    create = next(b for b in bodies if b'"Event-Name":"CHANNEL_CREATE"' in b)
    bad_sequence = create.replace(b'"Event-Sequence":"', b'"Event-Sequence":"x')
    garbage = [b"{not json", b'{"Core-UUID":"x"}', b"\xff\xfe", bad_sequence]
    stream = _framed(bodies[:40] + garbage + bodies[40:])
    (p_native, bus_native, _), (p_python, bus_python, _) = _native_read(stream, 65536), _python_read(stream, 65536)
    records = [[(r.key, r.value) for r in bus.read("ev")] for bus in (bus_native, bus_python)]
    assert records[0] == records[1]
    assert len(records[0]) > 50
    letters = [[(x["stage"], x["reason"]) for x in map(orjson.loads, (r.value for r in bus.read("dl")))]
               for bus in (bus_native, bus_python)]
    assert letters[0] == letters[1]
    assert ("esl-decode", "invalid-json") in letters[0]
    assert ("esl-decode", "missing-event-name") in letters[0]
    assert ("normalize", "bad-event-sequence") in letters[0]
    assert p_native.events_in == p_python.events_in == len(bodies) + 1  # undecodable bodies are not events
    assert p_native.events_out == p_python.events_out == len(records[0])
    assert p_native.dead_lettered == p_python.dead_lettered == len(letters[0])
    assert p_native.lag_seconds() > 0  # from the newest event's Event-Date-Timestamp
    assert p_native.sequence.core_uuid == p_python.sequence.core_uuid is not None
    assert p_native.sequence.last == p_python.sequence.last > 0


def test_resync_runs_on_the_reference_with_the_native_state_and_hands_it_back() -> None:
    bodies = _bodies("esl-json-inbound-queue.raw")
    node = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS))
    assert node.engine == "native"
    for body in bodies[:60]:  # calls in flight
        node.native.normalize_json(body)
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
        first.native.normalize_json(body)
    second = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS))
    second.restore(first.state_snapshot())
    assert second.reference.state_snapshot() == second.state_snapshot() == first.state_snapshot()
    assert [second.native.normalize_json(b) for b in bodies[80:]] == [first.native.normalize_json(b)
                                                                      for b in bodies[80:]]


def _python_read(stream: bytes, chunk: int) -> tuple[IngestPipeline, MemoryBus, list[str]]:
    """The reference: Python framing, decoding and normalizing, as EslConnection without a native reader."""
    bus = MemoryBus()
    pipeline = IngestPipeline(normalizer=Normalizer(node="fs1", domain_tenants=DOMAINS), publisher=bus, node="fs1",
                              events_topic="ev", dead_letter_topic="dl")
    parser, others = FrameParser(), []
    for i in range(0, len(stream), chunk):
        for frame in parser.feed(stream[i:i + chunk]):
            if frame.content_type in ("text/event-json", "text/event-plain"):
                try:
                    pipeline.on_event(decode_event(frame))
                except EslProtocolError as exc:
                    pipeline.on_error(exc)
            else:
                others.append(frame.content_type)
        for error in parser.take_errors():
            pipeline.on_error(error)
    parser.finish()
    for error in parser.take_errors():
        pipeline.on_error(error)
    return pipeline, bus, others


def _native_read(stream: bytes, chunk: int) -> tuple[IngestPipeline, MemoryBus, list[str]]:
    bus = MemoryBus()
    node = NodeNormalizer(Normalizer(node="fs1", domain_tenants=DOMAINS))
    assert node.engine == "native"
    pipeline = IngestPipeline(normalizer=node, publisher=bus, node="fs1", events_topic="ev", dead_letter_topic="dl")
    reader, others = NativeEventReader(node.native, pipeline), []
    for i in range(0, len(stream), chunk):
        for frame in reader.feed(stream[i:i + chunk]):
            others.append(frame.content_type)  # what the connection handles itself
        for error in reader.take_errors():
            pipeline.on_error(error)
    reader.finish()
    for error in reader.take_errors():
        pipeline.on_error(error)
    return pipeline, bus, others


@pytest.mark.parametrize("chunk", [97, 65536])
def test_the_native_reader_publishes_what_the_python_connection_path_does(chunk: int) -> None:
    """Whole captures (replies, events, real sequence regressions) with garbage and a truncated tail."""
    inbound = (FIXTURES / "esl-json-inbound-queue.raw").read_bytes()
    edge = (FIXTURES / "esl-json-queue-edge-cases.raw").read_bytes()
    stream = (inbound + b"Content-Length: 12\nContent-Type: text/event-json\n\n{not json!!}"
              + b"garbage line\n\n" + edge + b"Content-Length: 900\nContent-Type: text/event-json\n\n{\"a")
    (p_py, bus_py, others_py), (p_nat, bus_nat, others_nat) = _python_read(stream, chunk), _native_read(stream, chunk)
    assert [(r.key, r.value) for r in bus_nat.read("ev")] == [(r.key, r.value) for r in bus_py.read("ev")]
    assert bus_py.size("ev") > 100
    letters = [[(x["stage"], x["reason"]) for x in map(orjson.loads, (r.value for r in bus.read("dl")))]
               for bus in (bus_py, bus_nat)]
    assert letters[0] == letters[1]
    assert {"invalid-json", "truncated-frame"} <= {reason for _, reason in letters[0]}
    assert others_nat == others_py and "command/reply" in others_py
    assert (p_nat.events_in, p_nat.events_out, p_nat.dead_lettered) == (p_py.events_in, p_py.events_out,
                                                                        p_py.dead_lettered)
    watch_py, watch_nat = p_py.sequence, p_nat.sequence
    assert (watch_nat.core_uuid, watch_nat.last, watch_nat.skipped) == (watch_py.core_uuid, watch_py.last,
                                                                       watch_py.skipped)
    anomalies = [p.metrics.registry.get_sample_value("ccod_ingest_sequence_gaps_total",
                                                     {"node": "fs1", "kind": "regression"}) for p in (p_py, p_nat)]
    assert anomalies[0] == anomalies[1] and anomalies[0]  # the captures hold real regressions
    assert p_nat.lag_seconds() == pytest.approx(p_py.lag_seconds(), abs=1.0)


def test_a_connection_takes_the_native_reader() -> None:
    node = NodeNormalizer(Normalizer(node="fs1"))
    pipeline = IngestPipeline(normalizer=node, publisher=MemoryBus(), node="fs1", events_topic="ev",
                              dead_letter_topic="dl")
    reader = NativeEventReader(node.native, pipeline)
    conn = EslConnection("127.0.0.1", 1, "pw", on_event=pipeline.on_event, on_error=pipeline.on_error, parser=reader)
    assert conn.parser is reader
