"""Replayed scenarios 1 and 2 have the captures' shape: same events, order, headers; fresh ids and times."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import orjson
import pytest
from sim_helpers import CAPTURES, kind, ordered_json_events

from ccod_fs.simulator.model import NodeIdentity
from ccod_fs.simulator.replay import CaptureReplay

# The README's event-count tables (json columns).
README_COUNTS = {
    "inbound-queue": {
        "API": 34, "BACKGROUND_JOB": 2, "CALL_UPDATE": 7, "CHANNEL_ANSWER": 8, "CHANNEL_BRIDGE": 3,
        "CHANNEL_CALLSTATE": 28, "CHANNEL_CREATE": 8, "CHANNEL_DESTROY": 8, "CHANNEL_EXECUTE": 43,
        "CHANNEL_EXECUTE_COMPLETE": 37, "CHANNEL_HANGUP": 8, "CHANNEL_HANGUP_COMPLETE": 8,
        "CHANNEL_ORIGINATE": 4, "CHANNEL_OUTGOING": 7, "CHANNEL_PROGRESS": 4, "CHANNEL_PROGRESS_MEDIA": 4,
        "CHANNEL_STATE": 75, "CHANNEL_UNBRIDGE": 3, "CODEC": 16, "CUSTOM callcenter::info": 43,
        "CUSTOM sofia::pre_register": 3, "CUSTOM sofia::register": 3, "CUSTOM sofia::register_attempt": 3,
        "DTMF": 1, "HEARTBEAT": 3, "MESSAGE_QUERY": 3, "PLAYBACK_START": 5, "PLAYBACK_STOP": 5,
        "PRESENCE_IN": 17, "RECV_INFO": 1, "RE_SCHEDULE": 4,
    },
    "queue-edge-cases": {
        "API": 33, "BACKGROUND_JOB": 1, "CALL_UPDATE": 4, "CHANNEL_ANSWER": 6, "CHANNEL_BRIDGE": 2,
        "CHANNEL_CALLSTATE": 28, "CHANNEL_CREATE": 10, "CHANNEL_DESTROY": 10, "CHANNEL_EXECUTE": 42,
        "CHANNEL_EXECUTE_COMPLETE": 38, "CHANNEL_HANGUP": 10, "CHANNEL_HANGUP_COMPLETE": 10,
        "CHANNEL_ORIGINATE": 6, "CHANNEL_OUTGOING": 8, "CHANNEL_PROGRESS": 4, "CHANNEL_PROGRESS_MEDIA": 4,
        "CHANNEL_STATE": 80, "CHANNEL_UNBRIDGE": 2, "CODEC": 12, "CUSTOM callcenter::info": 54,
        "CUSTOM sofia::pre_register": 4, "CUSTOM sofia::register": 4, "CUSTOM sofia::register_attempt": 4,
        "HEARTBEAT": 4, "MESSAGE_QUERY": 4, "PLAYBACK_START": 4, "PLAYBACK_STOP": 4, "PRESENCE_IN": 20,
        "RE_SCHEDULE": 5,
    },
}
README_CC_ACTIONS = {
    "inbound-queue": {
        "agent-offering": 3, "agent-state-change": 9, "agent-status-change": 9, "bridge-agent-end": 3,
        "bridge-agent-start": 3, "member-queue-end": 4, "member-queue-start": 4, "members-count": 8,
    },
    "queue-edge-cases": {
        "agent-offering": 5, "agent-state-change": 12, "agent-status-change": 14, "bridge-agent-end": 2,
        "bridge-agent-fail": 3, "bridge-agent-start": 2, "member-queue-end": 4, "member-queue-start": 4,
        "members-count": 8,
    },
}
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NODE = NodeIdentity(core_uuid="11111111-2222-4333-8444-555555555555", hostname="fs-test-1")
START_US = 1_800_000_000_250_000


def replayed(name: str, seed: int = 7) -> tuple[CaptureReplay, list[list[tuple[str, object]]]]:
    replay = CaptureReplay(name, seed=seed, start_us=START_US)
    events = [orjson_pairs(ev.payload("json")) for ev in replay.events(NODE, 1)]
    return replay, events


def orjson_pairs(payload: bytes) -> list[tuple[str, object]]:
    import json

    return json.loads(payload, object_pairs_hook=list)


def label(ev: list[tuple[str, object]]) -> str:
    name, subclass, _ = kind(ev)
    return f"{name} {subclass}" if subclass else name


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_event_and_cc_action_counts_match_the_readme_tables(name: str) -> None:
    _, events = replayed(name)
    assert Counter(label(ev) for ev in events) == README_COUNTS[name]
    actions = Counter(dict(ev)["CC-Action"] for ev in events if dict(ev).get("CC-Action"))
    assert actions == README_CC_ACTIONS[name]
    assert len(events) == sum(README_COUNTS[name].values())


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_every_event_has_the_captured_header_names_in_the_captured_order(name: str) -> None:
    captured = ordered_json_events(CAPTURES[name].read_bytes())
    _, events = replayed(name)
    assert len(events) == len(captured)
    for mine, real in zip(events, captured, strict=True):
        assert [k for k, _ in mine] == [k for k, _ in real], label(real)
    # Per event type, the set of header-name sequences is the capture's.
    by_type_mine: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    by_type_real: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for mine, real in zip(events, captured, strict=True):
        by_type_mine[label(mine)].add(tuple(k for k, _ in mine))
        by_type_real[label(real)].add(tuple(k for k, _ in real))
    assert by_type_mine == by_type_real


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_relative_order_per_call_is_the_captures(name: str) -> None:
    captured = ordered_json_events(CAPTURES[name].read_bytes())
    replay, events = replayed(name)

    def per_call(evs: list[list[tuple[str, object]]], uuid_of) -> dict[str, list[tuple[str, str, str]]]:
        calls: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        for ev in evs:
            h = dict(ev)
            call = h.get("Channel-Call-UUID") or h.get("CC-Member-Session-UUID")
            if isinstance(call, str):
                calls[uuid_of(call)].append((*kind(ev), str(h.get("Channel-State", ""))))
        return calls

    real_calls = per_call(captured, replay.uuid_for)
    mine = per_call(events, lambda u: u)
    assert len(real_calls) >= 8
    assert mine == real_calls


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_uuids_are_fresh_and_consistent_and_times_shift_as_one(name: str) -> None:
    raw = CAPTURES[name].read_bytes()
    captured = ordered_json_events(raw)
    replay, events = replayed(name)
    mine_bytes = b"".join(ev.payload("json") for ev in replay.events(NODE, 1))
    assert not set(UUID_RE.findall(raw)) & set(UUID_RE.findall(mine_bytes))
    shift = None
    for mine, real in zip(events, captured, strict=True):
        m, r = dict(mine), dict(real)
        assert m["Core-UUID"] == NODE.core_uuid and m["FreeSWITCH-Hostname"] == "fs-test-1"
        if "Unique-ID" in r:
            assert m["Unique-ID"] == replay.uuid_for(str(r["Unique-ID"]))
        delta = int(str(m["Event-Date-Timestamp"])) - int(str(r["Event-Date-Timestamp"]))
        shift = delta if shift is None else shift
        assert delta == shift
        for key, value in r.items():
            if key.endswith("_uepoch") and value != "0":
                assert int(str(m[key])) - int(str(value)) == shift
            if (key.endswith("_epoch") or (key.startswith("CC-") and key.endswith("-Time"))) and value != "0":
                assert int(str(m[key])) - int(str(value)) == shift // 1_000_000, key
    assert shift is not None and shift % 1_000_000 == 0
    first = min(int(str(dict(ev)["Event-Date-Timestamp"])) for ev in events)
    assert abs(first - START_US) < 1_000_000


def test_sequence_keeps_the_capture_gaps_and_starts_where_asked() -> None:
    captured = ordered_json_events(CAPTURES["inbound-queue"].read_bytes())
    _, events = replayed("inbound-queue")
    mine = [int(str(dict(ev)["Event-Sequence"])) for ev in events]
    real = [int(str(dict(ev)["Event-Sequence"])) for ev in captured]
    assert min(mine) == 1
    assert [a - mine[0] for a in mine] == [b - real[0] for b in real]


def test_same_seed_same_stream_other_seed_other_uuids() -> None:
    a = b"".join(ev.payload("json") for ev in CaptureReplay("inbound-queue", seed=3).events(NODE, 1))
    b = b"".join(ev.payload("json") for ev in CaptureReplay("inbound-queue", seed=3).events(NODE, 1))
    c = b"".join(ev.payload("json") for ev in CaptureReplay("inbound-queue", seed=4).events(NODE, 1))
    assert a == b
    assert set(UUID_RE.findall(a)) - {NODE.core_uuid.encode()} != set(UUID_RE.findall(c)) - {
        NODE.core_uuid.encode()
    }
    assert len(orjson.loads(a[: a.index(b"}") + 1])) > 5
