"""A frame split across reads at any byte frames exactly as the whole stream (incl. a read ending right
after the outer headers, and reads smaller than the body bytes still missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccod_fs.esl.frames import FrameParser, iter_frames

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"


def _three_frames() -> bytes:
    frames, _ = iter_frames((FIXTURES / "esl-json-inbound-queue.raw").read_bytes())
    events = [f for f in frames if f.content_type == "text/event-json"][:3]
    return b"".join(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(f.body), f.body)
                    for f in events)


DATA = _three_frames()
WHOLE = [(f.headers, f.body) for f in iter_frames(DATA)[0]]
FIRST_BODY_START = DATA.index(b"\n\n") + 2


def _feed(pieces: list[bytes]) -> list[tuple[dict[str, str], bytes]]:
    parser = FrameParser()
    out = []
    for piece in pieces:
        out += [(f.headers, f.body) for f in parser.feed(piece)]
    parser.finish()
    assert parser.take_errors() == []
    return out


def test_reference_has_three_frames() -> None:
    assert len(WHOLE) == 3


@pytest.mark.parametrize("cut", [*range(0, 80), *range(FIRST_BODY_START - 3, FIRST_BODY_START + 3),
                                 *range(len(DATA) // 2 - 40, len(DATA) // 2 + 40), *range(len(DATA) - 20, len(DATA))])
def test_two_reads_split_anywhere(cut: int) -> None:
    assert _feed([DATA[:cut], DATA[cut:]]) == WHOLE


@pytest.mark.parametrize("step", [1, 3, 64, 1000, 4096])
def test_many_small_reads_inside_bodies(step: int) -> None:
    assert _feed([DATA[i:i + step] for i in range(0, len(DATA), step)]) == WHOLE


def test_read_ending_exactly_after_the_outer_headers() -> None:
    """The body's first byte arrives in the next read: nothing buffered, but a body is pending."""
    assert _feed([DATA[:FIRST_BODY_START], DATA[FIRST_BODY_START:FIRST_BODY_START + 1],
                  DATA[FIRST_BODY_START + 1:]]) == WHOLE
