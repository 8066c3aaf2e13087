"""The one-regex event-frame fast path and the general header parser frame a stream identically."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ccod_fs.esl.frames import FrameParser, _parse_header_block, iter_frames

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"

ODD = [
    b"Content-Length: 5\nContent-Type: text/event-json\nX-Extra: y\n\n{\"a\":",  # extra header: general path
    b"Content-Length: 00000003\nContent-Type: text/event-plain\n\nabc",  # 8 digits: general path
    b"Content-Length: 0\nContent-Type: text/event-json\n\n",
    b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n",
    b"\n\n",
    b"garbage line\n\n",
]


def _stream(seed: int) -> bytes:
    rng = random.Random(seed)
    frames, _ = iter_frames((FIXTURES / "esl-json-queue-edge-cases.raw").read_bytes())
    out = bytearray()
    for frame in frames[:150]:
        head = "".join(f"{k}: {v}\n" for k, v in frame.headers.items()).encode()
        out += head + b"\n" + frame.body
        if rng.random() < 0.1:
            out += rng.choice(ODD)
    return bytes(out)


def _general(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Reference framing with the general header parser only (every frame well-formed here)."""
    out = []
    pos = 0
    while pos < len(data):
        while pos < len(data) and data[pos] == 0x0A:
            pos += 1
        cut = data.find(b"\n\n", pos)
        if cut < 0:
            break
        headers = _parse_header_block(data[pos:cut])
        length = int(headers.get("Content-Length", "0"))
        out.append((headers, data[cut + 2:cut + 2 + length]))
        pos = cut + 2 + length
    return out


def test_fast_path_matches_the_general_parser_on_a_capture() -> None:
    data = (FIXTURES / "esl-json-inbound-queue.raw").read_bytes()
    frames, errors = iter_frames(data)
    assert errors == []
    assert [(f.headers, f.body) for f in frames] == _general(data)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_splits_with_odd_frames_frame_identically(seed: int) -> None:
    data = _stream(seed)
    whole_parser = FrameParser()
    whole = whole_parser.feed(data)
    whole_parser.finish()
    whole_errors = [(e.reason, e.raw) for e in whole_parser.take_errors()]
    rng = random.Random(seed)
    parser = FrameParser()
    pieces = []
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 3, 50, 1500, 4096, 65536])
        pieces.extend(parser.feed(bytearray(data[pos:pos + step]) if step == 3 else data[pos:pos + step]))
        pos += step
    parser.finish()
    assert [(f.headers, f.body) for f in pieces] == [(f.headers, f.body) for f in whole]
    assert [e.reason for e in parser.take_errors()] == [r for r, _ in whole_errors]
    assert len(whole) >= 150

