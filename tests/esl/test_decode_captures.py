"""The decoder reproduces the real FreeSWITCH captures exactly (every event of every capture)."""

from __future__ import annotations

import collections
import json
import random
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from ccod_fs.esl.decode import decode_capture, decode_event, is_event
from ccod_fs.esl.frames import FrameParser, iter_frames

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
STREAMS = ["inbound-queue", "queue-edge-cases"]

# From fixtures/freeswitch/README.md, "Event counts".
EXPECTED_TOTALS = {
    "esl-plain-inbound-queue.raw": 398,
    "esl-json-inbound-queue.raw": 398,
    "esl-plain-queue-edge-cases.raw": 415,
    "esl-json-queue-edge-cases.raw": 417,
}
EXPECTED_CC_ACTIONS = {
    "inbound-queue": {"agent-offering": 3, "agent-state-change": 9, "agent-status-change": 9, "bridge-agent-end": 3,
                      "bridge-agent-start": 3, "member-queue-end": 4, "member-queue-start": 4, "members-count": 8},
    "queue-edge-cases": {"agent-offering": 5, "agent-state-change": 12, "agent-status-change": 14,
                         "bridge-agent-end": 2, "bridge-agent-fail": 3, "bridge-agent-start": 2,
                         "member-queue-end": 4, "member-queue-start": 4, "members-count": 8},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_TOTALS))
def test_event_totals_match_the_capture_readme(name: str) -> None:
    events = decode_capture(FIXTURES / name)
    assert len(events) == EXPECTED_TOTALS[name]
    assert all(e.get("Core-UUID") and e.get("Event-Sequence", "").isdigit() for e in events)


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_callcenter_actions_match(stream: str, fmt: str) -> None:
    events = decode_capture(FIXTURES / f"esl-{fmt}-{stream}.raw")
    actions = collections.Counter(e.get("CC-Action") for e in events if e.subclass == "callcenter::info")
    assert dict(actions) == EXPECTED_CC_ACTIONS[stream]


def _plain_reference(body: bytes) -> dict[str, str]:
    """Independent oracle: split lines first, then url-decode each value (FreeSWITCH's own encoding order)."""
    head = body.split(b"\n\n", 1)[0].decode()
    out = {}
    for line in head.split("\n"):
        name, _, value = line.partition(": ")
        out[name] = unquote(value)
    return out


@pytest.mark.parametrize("stream", STREAMS)
def test_every_plain_event_decodes_to_its_reference(stream: str) -> None:
    frames, errors = iter_frames((FIXTURES / f"esl-plain-{stream}.raw").read_bytes())
    assert errors == []
    checked = 0
    for frame in frames:
        if not is_event(frame):
            continue
        event = decode_event(frame)
        reference = _plain_reference(frame.body)
        assert list(event.headers) == list(reference), "header order must be kept"
        for key, value in event.headers.items():
            if isinstance(value, list):
                assert reference[key] == "ARRAY::" + "|:".join(value)
            else:
                assert value == reference[key], key
        checked += 1
    assert checked == EXPECTED_TOTALS[f"esl-plain-{stream}.raw"]


@pytest.mark.parametrize("stream", STREAMS)
def test_every_json_event_decodes_to_its_reference(stream: str) -> None:
    frames, errors = iter_frames((FIXTURES / f"esl-json-{stream}.raw").read_bytes())
    assert errors == []
    events = [decode_event(f) for f in frames if is_event(f)]
    bodies = [json.loads(f.body) for f in frames if is_event(f)]
    for event, reference in zip(events, bodies, strict=True):
        body = reference.pop("_body", None)
        assert event.headers == reference
        assert event.body == body


def test_plain_and_json_agree_on_arrays_and_bodies() -> None:
    plain = decode_capture(FIXTURES / "esl-plain-inbound-queue.raw")
    jsn = decode_capture(FIXTURES / "esl-json-inbound-queue.raw")
    plain_dp = [e.headers["variable_DP_MATCH"] for e in plain if "variable_DP_MATCH" in e.headers]
    json_dp = [e.headers["variable_DP_MATCH"] for e in jsn if "variable_DP_MATCH" in e.headers]
    assert plain_dp and plain_dp[0] == ["7000", "7000"]
    assert len(plain_dp) == len(json_dp) and json_dp[0] == ["7000", "7000"]
    plain_jobs = [e.body for e in plain if e.name == "BACKGROUND_JOB"]
    json_jobs = [e.body for e in jsn if e.name == "BACKGROUND_JOB"]
    # scenario 1: the originate's "+OK <uuid>", then `bgapi status` ("UP ...")
    assert [b.split(" ")[0] for b in plain_jobs] == [b.split(" ")[0] for b in json_jobs] == ["+OK", "UP"]
    assert all(re.fullmatch(r"\+OK [0-9a-f-]{36}\n", b) for b in plain_jobs[:1])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_frames_split_at_random_points_decode_identically(seed: int) -> None:
    data = (FIXTURES / "esl-plain-queue-edge-cases.raw").read_bytes()
    whole, _ = iter_frames(data)
    rng = random.Random(seed)
    parser = FrameParser()
    pieces = []
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 7, 100, 1500, 65536])
        pieces.extend(parser.feed(data[pos:pos + step]))
        pos += step
    parser.finish()
    assert parser.take_errors() == []
    assert [(f.headers, f.body) for f in pieces] == [(f.headers, f.body) for f in whole]


def test_command_replies_and_api_responses_frame_correctly() -> None:
    frames, errors = iter_frames((FIXTURES / "esl-control-session-inbound-queue.raw").read_bytes())
    assert errors == []
    types = collections.Counter(f.content_type for f in frames)
    assert types["auth/request"] == 1
    assert types["api/response"] >= 10
    api = [f for f in frames if f.content_type == "api/response"]
    assert any(f.body.startswith(b"-ERR nosuchcommand Command not found!") for f in api)
    bg = [f for f in frames if f.headers.get("Reply-Text", "").startswith("+OK Job-UUID: ")]
    assert bg and all(f.headers["Job-UUID"] == f.headers["Reply-Text"].split(": ")[1] for f in bg)


def test_auth_failure_capture() -> None:
    frames, errors = iter_frames((FIXTURES / "esl-auth-failure.raw").read_bytes())
    assert errors == []
    assert [f.content_type for f in frames] == ["auth/request", "command/reply", "text/disconnect-notice"]
    assert frames[1].headers["Reply-Text"] == "-ERR invalid"
