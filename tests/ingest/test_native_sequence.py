"""The native normalizer's sequence watch against ``ccod_fs.ingest.pipeline.SequenceWatch``.

``ccod_fs_native.Normalizer`` observes ``Core-UUID`` + ``Event-Sequence`` (and keeps the newest
``Event-Date-Timestamp``) of every ``text/event-json`` body it decodes, in ``feed()`` and in
``normalize_json()``, also when the body then raises. The reference: a Python ``SequenceWatch`` fed
``event.get("Core-UUID")`` / ``event.get("Event-Sequence")`` of each frame's ``decode_json_body``
event, frames that fail to decode skipped. Anomalies, core, last, skipped and the timestamp must match.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import ccod_fs_native
import pytest
from native_parity import (
    CAPTURE_CONFIG,
    JSON_CAPTURES,
    all_capture_bodies,
    capture_bodies,
    chunked,
    fuzzed,
    junked_stream,
    simulated_nodes,
)

from ccod_fs.esl.decode import decode_json_body
from ccod_fs.esl.errors import EslDecodeError
from ccod_fs.esl.frames import FrameParser
from ccod_fs.ingest.normalize import NormalizeError
from ccod_fs.ingest.pipeline import SequenceWatch


@dataclass
class Expected:
    """What the Python pipeline observes of a stream of event-json bodies."""

    watch: SequenceWatch = field(default_factory=SequenceWatch)
    anomalies: list[tuple[str, str]] = field(default_factory=list)
    timestamp: str | None = None
    observed: int = 0  # bodies that decoded
    skipped_bodies: int = 0  # bodies that failed to decode

    def see(self, body: bytes) -> None:
        try:
            event = decode_json_body(body)
        except EslDecodeError:
            self.skipped_bodies += 1
            return
        self.observed += 1
        sequence = event.get("Event-Sequence")
        try:
            kind = self.watch.observe(event.get("Core-UUID"), sequence)
        except ValueError:  # isdigit() but not int() ("²"): raised before any state change
            kind = None
        if kind is not None:
            assert sequence is not None
            self.anomalies.append((kind, sequence))
        ts = event.get("Event-Date-Timestamp")
        if ts is not None:
            self.timestamp = ts

    def see_all(self, bodies: Iterable[bytes]) -> Expected:
        for body in bodies:
            self.see(body)
        return self


def state(nz: ccod_fs_native.Normalizer) -> tuple[Any, ...]:
    return nz.sequence_core_uuid, nz.sequence_last, nz.sequence_skipped, nz.last_event_timestamp


def assert_same(nz: ccod_fs_native.Normalizer, anomalies: list[tuple[str, str]], expected: Expected) -> None:
    assert anomalies == expected.anomalies
    assert state(nz) == (expected.watch.core_uuid, expected.watch.last, expected.watch.skipped, expected.timestamp)
    assert nz.take_sequence_anomalies() == []


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(body) + body


def event_json_bodies(stream: bytes) -> list[bytes]:
    """The event-json frame bodies ``FrameParser`` cuts out of a stream (garbage and all)."""
    parser = FrameParser()
    frames = parser.feed(stream)
    parser.finish()
    return [f.body for f in frames if f.content_type == "text/event-json"]


def feed_native(stream: bytes, seed: int | None, config: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
    """``feed()`` the stream whole (seed None) or chunked; anomalies taken after every read."""
    nz = ccod_fs_native.Normalizer(**(config or CAPTURE_CONFIG))
    anomalies: list[tuple[str, str]] = []
    chunks = [stream] if seed is None else chunked(stream, random.Random(seed), max_size=20_000)
    for chunk in chunks:
        nz.feed(chunk)
        anomalies += nz.take_sequence_anomalies()
    nz.finish()
    anomalies += nz.take_sequence_anomalies()
    return nz, anomalies


def body_by_body(bodies: Iterable[bytes], config: dict[str, Any] | None = None) -> tuple[Any, list[Any]]:
    """``normalize_json()`` per body, errors swallowed as the pipeline dead-letters them."""
    nz = ccod_fs_native.Normalizer(**(config or CAPTURE_CONFIG))
    for body in bodies:
        try:
            nz.normalize_json(body)
        except Exception:  # the outcome is test_native_parity's business
            pass
    return nz, nz.take_sequence_anomalies()


def check_stream(stream: bytes, seeds: Iterable[int | None] = (None, 0, 1)) -> Expected:
    """feed() whole and chunked, and normalize_json() per frame body: all as the Python watch."""
    bodies = event_json_bodies(stream)
    expected = Expected().see_all(bodies)
    for seed in seeds:
        nz, anomalies = feed_native(stream, seed)
        assert_same(nz, anomalies, expected)
    nz, anomalies = body_by_body(bodies)
    assert_same(nz, anomalies, expected)
    return expected


# ---- real captures ------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", JSON_CAPTURES, ids=lambda p: p.stem)
def test_every_capture(capture: Any) -> None:
    expected = check_stream(capture.read_bytes())
    # the captures hold real regressions (FreeSWITCH numbers events before it queues them) and gaps
    kinds = [kind for kind, _ in expected.anomalies]
    assert kinds and set(kinds) == {"regression"}, kinds
    assert expected.watch.skipped > 0
    assert expected.observed == len(capture_bodies(capture)) > 350
    assert expected.timestamp is not None and expected.timestamp.isdigit()


def test_the_captures_known_anomalies() -> None:
    """Pinned, so that both sides agreeing on nothing cannot pass."""
    nz, anomalies = feed_native(JSON_CAPTURES[0].read_bytes(), None)
    assert anomalies[:3] == [("regression", "474"), ("regression", "476"), ("regression", "478")]
    assert len(anomalies) == 11 and anomalies[-1] == ("regression", "859")
    assert nz.sequence_core_uuid is not None and nz.sequence_last > 859 and nz.sequence_skipped > 0


@pytest.mark.parametrize("order", [(0, 1), (1, 0), (0, 0)])
def test_two_captures_back_to_back(order: tuple[int, int]) -> None:
    """One node restarting between two captures: a core change (none when the same core comes back)."""
    stream = b"".join(JSON_CAPTURES[i].read_bytes() for i in order)
    expected = check_stream(stream)
    changes = [seq for kind, seq in expected.anomalies if kind == "core-change"]
    assert len(changes) == (order[0] != order[1])
    if order[0] == order[1]:  # the replay starts again from low numbers: a regression
        assert expected.anomalies.count(("regression", expected.anomalies[0][1])) >= 1
        assert len(expected.anomalies) > 2 * 11


def test_anomalies_are_drained_in_order() -> None:
    data = JSON_CAPTURES[1].read_bytes() + JSON_CAPTURES[0].read_bytes()
    nz = ccod_fs_native.Normalizer(**CAPTURE_CONFIG)
    assert state(nz) == (None, -1, 0, None)
    assert nz.take_sequence_anomalies() == []
    nz.feed(data)
    first = nz.take_sequence_anomalies()
    assert first == Expected().see_all(event_json_bodies(data)).anomalies
    assert ("core-change", first[[k for k, _ in first].index("core-change")][1]) in first
    assert nz.take_sequence_anomalies() == []
    assert all(isinstance(kind, str) and isinstance(seq, str) for kind, seq in first)


# ---- simulated loads and the fuzz ---------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_simulated_nodes(seed: int) -> None:
    """Two simulated nodes one after the other and interleaved: core changes both ways."""
    nodes = simulated_nodes(seed, calls=60)
    serial = b"".join(frame(body) for node in nodes for body in node)
    expected = check_stream(serial)
    assert [kind for kind, _ in expected.anomalies].count("core-change") == 1
    rng = random.Random(seed)
    mixed: list[bytes] = []
    queues = [list(node) for node in nodes]
    while any(queues):
        q = rng.choice([q for q in queues if q])
        n = rng.randrange(1, 6)
        mixed += q[:n]
        del q[:n]
    expected = check_stream(b"".join(frame(body) for body in mixed))
    assert expected.observed == len(mixed)


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_captures(seed: int) -> None:
    bodies = list(fuzzed(all_capture_bodies(), seed, rate=0.5))
    expected = check_stream(b"".join(frame(body) for body in bodies))
    assert expected.skipped_bodies > 0
    assert {"core-change", "regression"} <= {kind for kind, _ in expected.anomalies}


@pytest.mark.parametrize("seed", range(3))
def test_fuzzed_simulated_load(seed: int) -> None:
    bodies = [body for node in simulated_nodes(seed + 10, calls=40) for body in node]
    expected = check_stream(b"".join(frame(body) for body in fuzzed(bodies, seed, rate=0.5)))
    assert expected.anomalies


@pytest.mark.parametrize("seed", range(6))
def test_garbage_and_broken_frames(seed: int) -> None:
    expected = check_stream(junked_stream(seed), seeds=(None, seed))
    assert expected.observed > 700


# ---- edge values --------------------------------------------------------------------------------


def _body(**headers: Any) -> bytes:
    return json.dumps({"Event-Name": "HEARTBEAT", **headers}, ensure_ascii=False).encode()


EDGE_BODIES = [
    _body(**{"Core-UUID": "a", "Event-Sequence": "10", "Event-Date-Timestamp": "1764118923456789"}),
    _body(**{"Core-UUID": "a", "Event-Sequence": "13"}),  # 2 skipped
    _body(**{"Core-UUID": "a", "Event-Sequence": "13"}),  # regression (equal)
    _body(**{"Core-UUID": "a", "Event-Sequence": "0012"}),  # regression
    _body(**{"Core-UUID": "a", "Event-Sequence": None}),
    _body(**{"Core-UUID": None, "Event-Sequence": "1"}),
    _body(**{"Event-Sequence": "1"}),
    _body(**{"Core-UUID": "a"}),
    _body(**{"Core-UUID": "a", "Event-Sequence": ""}),
    _body(**{"Core-UUID": "a", "Event-Sequence": "-5"}),
    _body(**{"Core-UUID": "a", "Event-Sequence": " 12"}),
    _body(**{"Core-UUID": "a", "Event-Sequence": "²"}),  # isdigit() but not int()
    _body(**{"Core-UUID": "a", "Event-Sequence": "2" * 5000}),  # beyond int()'s digit limit
    _body(**{"Core-UUID": "a", "Event-Sequence": "١٢٣"}),  # Arabic-Indic 123: int() reads it
    _body(**{"Core-UUID": "a", "Event-Sequence": "9" * 45}),  # beyond 128 bits
    _body(**{"Core-UUID": "a", "Event-Sequence": "1" + "0" * 45}),
    _body(**{"Core-UUID": "a", "Event-Sequence": "7" * 45}),  # big regression
    _body(**{"Core-UUID": "a", "Event-Sequence": "1" + "0" * 50, "Event-Date-Timestamp": ["1", "2"]}),
    _body(**{"Core-UUID": "b", "Event-Sequence": 17}),  # json.dumps: "17", a core change
    _body(**{"Core-UUID": "b", "Event-Sequence": 10**20, "Event-Date-Timestamp": 5}),  # orjson: 1e20, "1e+20"
    _body(**{"Core-UUID": "b", "Event-Sequence": ["3"]}),  # "3": regression
    _body(**{"Core-UUID": "b", "Event-Sequence": ["4", "5"]}),  # "4|5": ignored
    _body(**{"Core-UUID": "b", "Event-Sequence": 1.5}),
    _body(**{"Core-UUID": "b", "Event-Sequence": True}),
    _body(**{"Core-UUID": ["b"], "Event-Sequence": "6"}),  # "b": the same core
    _body(**{"Core-UUID": {"x": 1}, "Event-Sequence": "7"}),  # '{"x": 1}'
    _body(**{"Core-UUID": "", "Event-Sequence": "8"}),  # an empty core is a core
    _body(**{"Core-UUID": [], "Event-Sequence": "9"}),  # "" again: the same core
    b'{"Event-Name":"HEARTBEAT","Core-UUID":"c","Event-Sequence":"5","Event-Sequence":null}',  # ignored
    b'{"Event-Name":"HEARTBEAT","Core\\u002dUUID":"c","Event-Sequence":"\\u0035"}',
    b'{"Event-Name":"HEARTBEAT","Core-UUID":"c","Event-Sequence":"4","Event-Sequence":"9"}',
    b'{"Core-UUID":"c","Event-Sequence":"1","Event-Date-Timestamp":"6"}',  # no Event-Name: not decoded
    b'{"Event-Name":"HEARTBEAT","Core-UUID":"c","Event-Sequence":"1"',  # broken: not decoded
    b'{"Event-Name":"HEARTBEAT","Core-UUID":"c","Event-Sequence":"2","_body":5}',  # not decoded
    b'{"Event-Name":"HEARTBEAT","Core-UUID":"c","Event-Sequence":"3","x":1e400}',  # not decoded
    # decoded, then NormalizeError: still observed (and its timestamp kept)
    _body(**{"Event-Name": "CHANNEL_ANSWER", "Core-UUID": "c", "Event-Sequence": "2", "Event-Date-Timestamp": "x"}),
    _body(**{"Event-Name": "CHANNEL_CREATE", "Core-UUID": "d", "Event-Sequence": "50"}),
]


def test_edge_values() -> None:
    expected = check_stream(b"".join(frame(body) for body in EDGE_BODIES))
    assert expected.anomalies == [
        ("regression", "13"), ("regression", "0012"), ("regression", "7" * 45),
        ("core-change", "17"), ("regression", "3"), ("core-change", "7"), ("core-change", "8"),
        ("core-change", "5"), ("regression", "2"), ("core-change", "50"),
    ]
    assert expected.watch.core_uuid == "d" and expected.watch.last == 50
    assert expected.watch.skipped == 2 + (123 - 12 - 1) + (10**45 - 1 - 123 - 1) + (10**50 - int("7" * 45) - 1) + (
        6 - 3 - 1) + (9 - 5 - 1)
    assert expected.timestamp == "x"
    assert expected.skipped_bodies == 4


def test_raising_bodies_are_observed() -> None:
    """A NormalizeError body counts for the watch and the timestamp, through both entry points."""
    bodies = [
        _body(**{"Core-UUID": "a", "Event-Sequence": "5", "Event-Date-Timestamp": "1764118923456789"}),
        _body(**{"Event-Name": "CHANNEL_CREATE", "Core-UUID": "a", "Event-Sequence": "3",
                 "Event-Date-Timestamp": "bad"}),
    ]
    nz = ccod_fs_native.Normalizer()
    nz.normalize_json(bodies[0])
    with pytest.raises(NormalizeError):
        nz.normalize_json(bodies[1])
    assert nz.take_sequence_anomalies() == [("regression", "3")]
    assert state(nz) == ("a", 3, 0, "bad")
    nz = ccod_fs_native.Normalizer()
    items = nz.feed(b"".join(frame(body) for body in bodies))
    assert isinstance(items[1], tuple) and isinstance(items[1][1], NormalizeError)
    assert nz.take_sequence_anomalies() == [("regression", "3")]
    assert state(nz) == ("a", 3, 0, "bad")


def test_decode_errors_observe_nothing() -> None:
    nz = ccod_fs_native.Normalizer()
    for body in EDGE_BODIES[-6:-2]:
        with pytest.raises(EslDecodeError):
            nz.normalize_json(body)
    assert state(nz) == (None, -1, 0, None)
    assert nz.take_sequence_anomalies() == []
