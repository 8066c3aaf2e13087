"""The native normalizer (``ccod_fs_native``, native/) against the Python reference, event by event.

Every body goes through both ``decode_json_body`` -> ``Normalizer.normalize`` -> ``serialize_event``
and ``ccod_fs_native.Normalizer.normalize_json``: the (tenant, bytes) lists, or the exceptions
(class, reason, detail), must be identical, and so must ``last_seen`` after every event and
``state_snapshot()`` at the end. Sources: every event of the real captures, simulated multi-tenant
loads, a seeded mutation fuzz of both, snapshot hand-overs between the two and leg eviction.
"""

from __future__ import annotations

import collections
import json
import random
from typing import Any

import ccod_fs_native
import orjson
import pytest
from native_parity import (
    CAPTURE_CONFIG,
    COMPARED_KEYS,
    COMPARED_SITES,
    FIXTURES,
    JSON_CAPTURES,
    FeedPair,
    Pair,
    all_capture_bodies,
    capture_bodies,
    chunked,
    compared_fuzzed,
    fuzzed,
    junked_stream,
    native_outcome,
    python_outcome,
    simulated_nodes,
)

from ccod_fs.ingest.normalize import Normalizer

SIM_SEEDS = [1, 2, 3]
FUZZ_SEEDS = list(range(8))
CONFIGS: list[dict[str, Any]] = [
    CAPTURE_CONFIG,
    {"node": "fs-7", "domain_is_tenant": True},
    {"system_tenant": "sys.ops", "agent_tenants": {"1000@default": "tenant-b", "1001@default": "acme"},
     "domain_tenants": {"127.0.0.1": "acme"}},
    {"node": "", "domain_tenants": {"default": "acme"}, "domain_is_tenant": True, "ended_leg_retention": 2},
]


def _types(outcomes: list[Any]) -> collections.Counter[str]:
    found: collections.Counter[str] = collections.Counter()
    for outcome in outcomes:
        if isinstance(outcome, list):
            for _, raw in outcome:
                found[orjson.loads(raw)["type"]] += 1
    return found


def test_the_captures_are_there() -> None:
    assert [p.name for p in JSON_CAPTURES] == ["esl-json-inbound-queue.raw", "esl-json-queue-edge-cases.raw"]


@pytest.mark.parametrize("capture", JSON_CAPTURES, ids=lambda p: p.stem)
@pytest.mark.parametrize("config", CONFIGS, ids=["capture-config", "node-domain", "agent-tenants", "retention-2"])
def test_every_capture_event(capture: Any, config: dict[str, Any]) -> None:
    pair = Pair(config)
    bodies = capture_bodies(capture)
    outcomes = [pair.feed(body) for body in bodies]
    pair.assert_same_state()
    assert pair.events == len(bodies) > 350
    # the README's per-capture totals (test_normalize_captures.EXPECTED_TYPES) with the capture's own config
    assert pair.canonical == {"esl-json-inbound-queue": 60, "esl-json-queue-edge-cases": 72}[capture.stem] or (
        config is not CAPTURE_CONFIG and pair.canonical > 50)
    types = _types(outcomes)
    assert {"call.offered", "call.queued", "call.answered", "call.ended", "agent.status_changed",
            "agent.registered", "node.heartbeat", "command.result"} <= set(types)


def test_captures_event_counts() -> None:
    """Both captures as one stream (one node restarting between them), with the README's counts."""
    pair = Pair(CAPTURE_CONFIG)
    outcomes = [pair.feed(body) for body in all_capture_bodies()]
    pair.assert_same_state()
    assert pair.events == 815
    assert sum(_types(outcomes).values()) == pair.canonical == 60 + 72


@pytest.mark.parametrize("seed", SIM_SEEDS)
def test_simulated_multi_tenant_load(seed: int) -> None:
    outcomes = []
    for bodies in simulated_nodes(seed):
        pair = Pair({"domain_is_tenant": True})
        outcomes += [pair.feed(body) for body in bodies]
        pair.assert_same_state()
    types = _types(outcomes)
    assert {"call.transferred", "call.hold", "call.dtmf", "agent.registered", "call.agent_failed",
            "call.dequeued", "node.heartbeat", "agent.state_changed"} <= set(types)
    dequeued = [orjson.loads(raw) for out in outcomes if isinstance(out, list) for _, raw in out]
    outcomes_seen = {e["payload"]["outcome"] for e in dequeued if e["type"] == "call.dequeued"}
    assert {"answered", "abandoned"} <= outcomes_seen
    assert len({e["tenant_id"] for e in dequeued}) >= 3


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_fuzzed_captures(seed: int) -> None:
    bodies = all_capture_bodies()
    for config in (CAPTURE_CONFIG, CONFIGS[1], CONFIGS[3]):
        pair = Pair(config)
        pair.feed_all(fuzzed(bodies, seed))
        pair.assert_same_state()
        assert pair.events > 700 and pair.errors


@pytest.mark.parametrize("seed", FUZZ_SEEDS[:4])
def test_fuzzed_simulated_load(seed: int) -> None:
    for bodies in simulated_nodes(100 + seed, calls=50):
        for config in ({"domain_is_tenant": True}, {"domain_tenants": {"tenant1": "tenant1"}}):
            pair = Pair(config)
            pair.feed_all(fuzzed(bodies, seed, rate=0.2))
            pair.assert_same_state()
            assert pair.canonical > 0 and pair.errors


def test_the_fuzz_reaches_every_error_path() -> None:
    """A guard on the fuzzer itself: the mutations must hit each kind of error both sides can raise."""
    errors: collections.Counter[str] = collections.Counter()
    events = 0
    streams = [all_capture_bodies(), *simulated_nodes(7, calls=60)]
    for seed in range(6):
        for bodies in streams:
            pair = Pair({"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}})
            pair.feed_all(fuzzed(bodies, 1000 + seed, rate=0.5))
            errors += pair.errors
            events += pair.events
    assert events > 20_000
    expected = {
        "EslDecodeError:invalid-json", "EslDecodeError:invalid-utf8", "EslDecodeError:missing-event-name",
        "EslDecodeError:invalid-header-value", "NormalizeError:bad-timestamp", "NormalizeError:bad-event-sequence",
        "NormalizeError:missing-core-uuid", "NormalizeError:bad-event-name", "NormalizeError:missing-header",
        "NormalizeError:invalid-tenant", "NormalizeError:missing-unique-id", "NormalizeError:call-unknown",
        "NormalizeError:agent-tenant-unresolved", "NormalizeError:tenant-missing", "NormalizeError:bad-dtmf-digit",
        "NormalizeError:bad-header",
    }
    assert expected <= set(errors), sorted(expected - set(errors))
    # A number, object or non-string array where a string header is read is bad-header, never a raw TypeError.
    assert not {e for e in errors if e.startswith("TypeError:")}, sorted(errors)


def test_fuzzed_compared_headers() -> None:
    """Odd JSON types (falsy ones too) where a header is only tested or compared (``Call-Direction ==
    "inbound"``, ``variable_cc_member_session_uuid``, ...): the same bad-header and the same state on both
    sides, and the fuzz reaches every such read."""
    bad_headers: collections.Counter[str] = collections.Counter()
    sites: collections.Counter[tuple[str, str]] = collections.Counter()
    streams = [(all_capture_bodies(), CAPTURE_CONFIG), *((b, {"domain_is_tenant": True}) for b in simulated_nodes(9))]
    for seed in range(3):
        for bodies, config in streams:
            pair = Pair(config)
            pair.feed_all(compared_fuzzed(bodies, 2000 + seed))
            pair.assert_same_state()
            assert pair.canonical > 0
            bad_headers += pair.bad_headers
            sites += pair.bad_header_sites
    assert set(COMPARED_KEYS) <= set(bad_headers), sorted(set(COMPARED_KEYS) - set(bad_headers))
    assert set(COMPARED_SITES) <= set(sites), sorted(set(COMPARED_SITES) - set(sites))
    assert not {e for e in pair.errors if e.startswith("TypeError:")}


def _split_stream() -> list[bytes]:
    return all_capture_bodies() + [b for node in simulated_nodes(5, calls=40) for b in node]


@pytest.mark.parametrize("cut", [150, 400, 1200])
def test_snapshot_hand_over_native_python_native(cut: int) -> None:
    """native snapshot -> Python restore -> Python snapshot -> native restore, mid-stream: same output."""
    bodies = _split_stream()
    config = {"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}, "domain_is_tenant": True}
    straight = ccod_fs_native.Normalizer(**config)
    expected = [native_outcome(straight, body) for body in bodies]

    first = ccod_fs_native.Normalizer(**config)
    got = [native_outcome(first, body) for body in bodies[:cut]]
    python = Normalizer(**config)  # type: ignore[arg-type]
    python.restore(json.loads(json.dumps(first.state_snapshot())))  # persisted as JSON by the ingest
    assert python.state_snapshot() == first.state_snapshot()
    second = ccod_fs_native.Normalizer(**config)
    second.restore(json.loads(json.dumps(python.state_snapshot())))
    assert second.state_snapshot() == first.state_snapshot()
    assert second.last_seen == first.last_seen
    got += [native_outcome(second, body) for body in bodies[cut:]]
    assert got == expected
    assert second.state_snapshot() == straight.state_snapshot()
    assert any(isinstance(o, list) and o for o in got[cut:])


def test_python_snapshot_restored_natively_continues_in_parity() -> None:
    bodies = _split_stream()
    config = {"domain_tenants": {"default": "acme", "127.0.0.1": "acme"}, "domain_is_tenant": True}
    python = Normalizer(**config)  # type: ignore[arg-type]
    for body in bodies[:700]:
        python_outcome(python, body)
    pair = Pair(config)
    pair.python.restore(python.state_snapshot())
    pair.native.restore(json.loads(json.dumps(python.state_snapshot())))
    pair.assert_same_state()
    pair.feed_all(bodies[700:])
    pair.assert_same_state()
    assert pair.canonical > 100


@pytest.mark.parametrize("retention", [0, 1, 3, 25])
def test_ended_leg_eviction(retention: int) -> None:
    bodies = _split_stream()
    pair = Pair({"domain_is_tenant": True, "domain_tenants": {"default": "acme", "127.0.0.1": "acme"},
                 "ended_leg_retention": retention})
    pair.feed_all(bodies)
    pair.assert_same_state()
    snapshot = pair.native.state_snapshot()
    assert len(snapshot["calls"]["ended"]) == retention
    pair.feed_all(fuzzed(bodies, retention))
    pair.assert_same_state()


def test_restore_rejects_an_unknown_version() -> None:
    native = ccod_fs_native.Normalizer()
    with pytest.raises(ValueError, match="unknown normalizer snapshot version"):
        native.restore({"version": 2, "calls": {}, "agents": {}})
    with pytest.raises(ValueError, match="unknown normalizer snapshot version"):
        Normalizer().restore({"version": 2, "calls": {}, "agents": {}})


@pytest.mark.parametrize("kwargs", [{"system_tenant": "bad tenant"}, {"domain_tenants": {"x": "-no"}},
                                    {"agent_tenants": {"a@b": ""}}])
def test_invalid_configuration_is_refused_alike(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as python_error:
        Normalizer(**kwargs)
    with pytest.raises(ValueError) as native_error:
        ccod_fs_native.Normalizer(**kwargs)
    assert str(native_error.value) == str(python_error.value)


def test_a_fresh_normalizer_has_the_same_state() -> None:
    pair = Pair({})
    pair.assert_same_state()
    assert pair.native.last_seen is None


# ---- feed(): framing + normalize ----------------------------------------------------------------

ALL_CAPTURES = sorted(FIXTURES.glob("*.raw"))


@pytest.mark.parametrize("capture", ALL_CAPTURES, ids=lambda p: p.stem)
def test_feed_every_capture_whole_and_chunked(capture: Any) -> None:
    data = capture.read_bytes()
    whole = FeedPair(CAPTURE_CONFIG)
    whole.feed(data)
    whole.finish()
    assert whole.frames > 0
    for seed in range(3):
        pair = FeedPair(CAPTURE_CONFIG)
        for chunk in chunked(data, random.Random(seed), max_size=5000):
            pair.feed(chunk)
        pair.finish()
        assert pair.kinds == whole.kinds


@pytest.mark.parametrize("seed", range(6))
def test_feed_with_garbage_and_broken_frames(seed: int) -> None:
    pair = FeedPair(CAPTURE_CONFIG)
    for chunk in chunked(junked_stream(seed), random.Random(seed)):
        pair.feed(chunk)
    pair.finish()
    assert {"event", "frame", "failed", "frame-error"} <= set(pair.kinds), pair.kinds


@pytest.mark.parametrize("cut", [3, 20, 45, 60, 300, 2000])
def test_feed_stream_ending_mid_frame(cut: int) -> None:
    """A read that ends inside a head or a body: the same truncated-frame error at finish()."""
    data = b"".join(capture.read_bytes() for capture in JSON_CAPTURES[:1])
    frames_end = len(data)
    for junk in (b"", b"Content-Type: api/response\nContent-Length: 5000\n\nabc"):
        pair = FeedPair(CAPTURE_CONFIG)
        stream = data + junk + data[:cut]
        for chunk in chunked(stream, random.Random(cut)):
            pair.feed(chunk)
        pair.finish()
        assert pair.kinds["finish-error"] == 1
        assert pair.frames > frames_end // 5000


def _event_of(name: str) -> dict[str, Any]:
    for body in all_capture_bodies():
        data = orjson.loads(body)
        if data.get("Event-Name") == name:
            return dict(data)
    raise AssertionError(name)


def test_handmade_edge_cases() -> None:
    """Duplicates with nulls (hundreds of them), escaped keys, ``_body`` twice, odd spacing."""
    beat = _event_of("HEARTBEAT")
    job = _event_of("BACKGROUND_JOB")
    head = orjson.dumps(beat)[1:-1]
    bodies = [
        b"{" + b",".join([b'"Event-Name":null,"Event-Name":"HEARTBEAT"'] * 300) + b"," + head + b"}",
        b"{" + head + b"," + b",".join([b'"Core-UUID":null,"Core-UUID":"x"'] * 300) + b"}",
        b"{" + head + b',"Event-Name":null}',
        b"{" + head + b',"Event\\u002dName":"HEARTBEAT","Core\\u002DUUID":"\\ud83d\\ude00"}',
        b'{ "Event-Name" : "HEARTBEAT" ,\n\t"Core-UUID":"c", "Event-Sequence":"7",\r"Event-Date-Timestamp":'
        b'"1764118923456789" , "_body" : null, "_body": "x" }',
        orjson.dumps({**job, "_body": "\u2003+OK abc\u2003\x1c"}),
        orjson.dumps({**job, "_body": None}),
        b"{" + orjson.dumps({**job, "_body": "+OK 1"})[1:-1] + b',"_body":"-ERR no"}',
        b"{" + orjson.dumps(job)[1:-1] + b',"Job-Command-Arg":["{ccod_tenant=acme}a","b"]}',
        b"{" + head + b',"Uptime-msec":123,"Session-Count":[1],"FreeSWITCH-Version":{"a":1,"b":2}}',
        b"{" + head + b',"FreeSWITCH-Version":{"a":1,"b":2,"a":3}}',
        b"{" + head + b',"FreeSWITCH-Version":[1,"x"]}',
        b"{" + head + b',"FreeSWITCH-Switchname":5}',
        b"{" + head + b',"Core-UUID":""}',
        b"{" + head + b',"Event-Sequence":"0018"}',
    ]
    pair = Pair({"node": ""})
    outcomes = [pair.feed(body) for body in bodies]
    pair.assert_same_state()
    errors = [o for o in outcomes if isinstance(o, tuple)]
    assert ("NormalizeError", "bad-header", "FreeSWITCH-Switchname is a JSON number, not a string") in errors
    assert ("NormalizeError", "bad-header", "FreeSWITCH-Version is a JSON object, not a string") in errors
    assert not [e for e in errors if e[0] == "TypeError"]
    assert sum(isinstance(o, list) and len(o) == 1 for o in outcomes) >= 6


def test_timestamps_across_the_whole_range() -> None:
    """``datetime_from_us`` goes through a float: every rounding must come out the same."""
    beat = _event_of("HEARTBEAT")
    rng = random.Random(5)
    stamps = [1_000_000_000_000_000, 9_999_999_999_999_999, 4_102_444_800_000_000, 4_294_967_295_999_999]
    stamps += [rng.randrange(1_000_000_000_000_000, 10_000_000_000_000_000) for _ in range(3000)]
    stamps += [rng.randrange(4_294_967_296, 9_999_999_999) * 1_000_000 + rng.choice((0, 999_000, 1_000, 500_500))
               for _ in range(1000)]
    pair = Pair({})
    for us in stamps:
        out = pair.feed(orjson.dumps({**beat, "Event-Date-Timestamp": str(us)}))
        assert isinstance(out, list) and len(out) == 1


@pytest.mark.parametrize("cut", [300, 900])
def test_reconnect_resync_through_the_python_reference(cut: int) -> None:
    """The ingest's reconnect: native snapshot -> Python restore + resync -> snapshot -> native restore."""
    from ccod_fs.contract.events import serialize_event

    bodies = [b for node in simulated_nodes(9, calls=40)[:1] for b in node]
    config = {"domain_is_tenant": True}
    reference = Normalizer(**config)  # type: ignore[arg-type]
    expected = [python_outcome(reference, body) for body in bodies[:cut]]
    live = [row[0] for row in reference.state_snapshot()["calls"]["legs"] if not row[8]]
    assert len(live) >= 2
    listing = orjson.dumps({"row_count": len(live) // 2, "rows": [{"uuid": u} for u in live[::2]]})
    expected_resync = [serialize_event(env) for env in reference.resync(listing)]
    assert expected_resync
    expected += [python_outcome(reference, body) for body in bodies[cut:]]

    native = ccod_fs_native.Normalizer(**config)
    got = [native_outcome(native, body) for body in bodies[:cut]]
    python = Normalizer(**config)  # type: ignore[arg-type]
    python.restore(native.state_snapshot())
    assert [serialize_event(env) for env in python.resync(listing)] == expected_resync
    native = ccod_fs_native.Normalizer(**config)
    native.restore(python.state_snapshot())
    got += [native_outcome(native, body) for body in bodies[cut:]]
    assert got == expected
    assert native.state_snapshot() == reference.state_snapshot()
