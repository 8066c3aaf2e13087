"""Hostile and broken input: one bad frame costs only itself, never a crash, never a forged header."""

from __future__ import annotations

import greenswitch
import orjson
import pytest

from ccod_fs.esl.decode import decode_event, decode_plain_body
from ccod_fs.esl.errors import EslDecodeError
from ccod_fs.esl.frames import MAX_CONTENT_LENGTH, FrameParser, iter_frames


def plain_frame(body: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(body), body)


def json_frame(obj: dict[str, object]) -> bytes:
    body = orjson.dumps(obj)
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body)


EVIL_NAME = "Mallory%0AEvent-Name%3A%20CHANNEL_HANGUP%0AHangup-Cause%3A%20CALL_REJECTED"
EVIL_BODY = (
    "Event-Name: CHANNEL_CREATE\nCore-UUID: c\nEvent-Sequence: 7\n"
    f"Caller-Caller-ID-Name: {EVIL_NAME}\nUnique-ID: u1\n\n"
).encode()


def test_encoded_newline_in_caller_name_stays_one_value() -> None:
    event = decode_plain_body(EVIL_BODY)
    assert event.name == "CHANNEL_CREATE"
    assert event.headers["Caller-Caller-ID-Name"] == (
        "Mallory\nEvent-Name: CHANNEL_HANGUP\nHangup-Cause: CALL_REJECTED"
    )
    assert "Hangup-Cause" not in event.headers


def test_greenswitch_decoder_forges_a_header_from_the_same_input() -> None:
    """Why we decode ourselves: greenswitch url-decodes the whole frame, then splits lines."""
    legacy = greenswitch.esl.ESLEvent(EVIL_BODY.decode())
    assert legacy.headers["Event-Name"] == "CHANNEL_HANGUP"
    assert legacy.headers["Hangup-Cause"] == "CALL_REJECTED"


def test_json_caller_name_with_newline_stays_one_value() -> None:
    frames, _ = iter_frames(json_frame({"Event-Name": "CHANNEL_CREATE", "Caller-Caller-ID-Name": "a\nEvent-Name: X"}))
    event = decode_event(frames[0])
    assert event.name == "CHANNEL_CREATE"
    assert event.headers["Caller-Caller-ID-Name"] == "a\nEvent-Name: X"


def test_sdp_body_with_crlf_in_a_value() -> None:
    sdp = "v%3D0%0D%0Ao%3DFreeSWITCH%201%202%20IN%20IP4%20127.0.0.1%0D%0A"
    body = f"Event-Name: CHANNEL_ANSWER\nvariable_switch_r_sdp: {sdp}\nUnique-ID: u\n\n".encode()
    event = decode_plain_body(body)
    assert event.headers["variable_switch_r_sdp"] == "v=0\r\no=FreeSWITCH 1 2 IN IP4 127.0.0.1\r\n"
    assert event.headers["Unique-ID"] == "u"


GOOD = json_frame({"Event-Name": "HEARTBEAT", "Core-UUID": "c", "Event-Sequence": "1"})
GOOD2 = json_frame({"Event-Name": "HEARTBEAT", "Core-UUID": "c", "Event-Sequence": "2"})


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"Content-Length: -5\nContent-Type: text/event-json\n\n", "invalid-content-length"),
        (b"Content-Length: abc\nContent-Type: text/event-json\n\n", "invalid-content-length"),
        (b"Content-Length: %d\nContent-Type: text/event-json\n\n" % (MAX_CONTENT_LENGTH + 1),
         "content-length-too-large"),
        (b"\xff\xfe\xfd garbage without structure\n\n", "invalid-utf8"),
        (b"this is not a header line\n\n", "malformed-header"),
        (b"X-Thing: 1\n\n", "missing-content-type"),
    ],
)
def test_garbage_between_valid_frames_is_isolated(garbage: bytes, reason: str) -> None:
    parser = FrameParser()
    frames = parser.feed(GOOD + garbage + GOOD2)
    parser.finish()
    errors = parser.take_errors()
    assert [decode_event(f).get("Event-Sequence") for f in frames] == ["1", "2"]
    assert [e.reason for e in errors] == [reason]
    assert errors[0].raw, "the offending bytes are kept for the dead letter"


def test_truncated_frame_at_end_of_stream_is_reported() -> None:
    parser = FrameParser()
    assert parser.feed(GOOD + GOOD2[:-10]) != []
    parser.finish()
    errors = parser.take_errors()
    assert [e.reason for e in errors] == ["truncated-frame"]
    assert "10 body bytes missing" in errors[0].detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"Event-Name": "X", "_body": 5}', "invalid-header-value"),
        (b"[1,2]", "invalid-json"),
        (b'{"Event-Name": "X"', "invalid-json"),
        (b'{"Core-UUID": "c"}', "missing-event-name"),
        (b'{"Event-Name": "\xff"}', "invalid-utf8"),
    ],
)
def test_bad_json_bodies_raise_clear_errors(body: bytes, reason: str) -> None:
    frames, errors = iter_frames(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body))
    assert errors == []
    with pytest.raises(EslDecodeError) as info:
        decode_event(frames[0])
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"Event-Name: X\n\xc3\x28\n\n", "invalid-utf8"),
        (b"Event-Name: X\nno colon here\n\n", "malformed-header"),
        (b"Event-Name: BACKGROUND_JOB\nContent-Length: 50\n\n+OK short", "truncated-body"),
        (b"Core-UUID: c\n\n", "missing-event-name"),
    ],
)
def test_bad_plain_bodies_raise_clear_errors(body: bytes, reason: str) -> None:
    with pytest.raises(EslDecodeError) as info:
        decode_plain_body(body)
    assert info.value.reason == reason


def test_plain_background_job_body_is_exact() -> None:
    body = b"Event-Name: BACKGROUND_JOB\nJob-UUID: j\nContent-Length: 6\n\n+OK x\nTRAILING"
    event = decode_plain_body(body)
    assert event.body == "+OK x\n"
    assert event.headers["Content-Length"] == "6"


def test_non_string_json_values_are_rendered_as_text_not_structure() -> None:
    frames, _ = iter_frames(json_frame({"Event-Name": "X", "n": 1, "o": {"Event-Name": "Y"}}))
    event = decode_event(frames[0])
    assert event.name == "X"
    assert event.get("n") == "1"
    assert event.get("o") == '{"Event-Name": "Y"}'


@pytest.mark.parametrize("split", [1, 5, 17, 30, 40])
def test_garbage_at_the_end_of_a_read_does_not_eat_the_next_frame(split: int) -> None:
    """The next frame's start arrives split across reads right after garbage: it must survive whole."""
    garbage = b"\x00\x01 this is garbage without any structure at all\n\n"
    parser = FrameParser()
    frames = parser.feed(GOOD + garbage + GOOD2[:split])
    frames += parser.feed(GOOD2[split:])
    parser.finish()
    errors = parser.take_errors()
    assert [decode_event(f).get("Event-Sequence") for f in frames] == ["1", "2"]
    assert len(errors) == 1
    assert garbage.strip(b"\n") in errors[0].raw
