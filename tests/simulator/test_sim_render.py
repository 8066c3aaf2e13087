"""Rendering is exact: with the capture's own ids and times, templates give back the captured bytes."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from sim_helpers import FIXTURES

from ccod_fs.esl.frames import iter_frames
from ccod_fs.simulator.capture_data import events_from_json_capture
from ccod_fs.simulator.encoding import url_encode
from ccod_fs.simulator.model import FsEvent, NodeIdentity
from ccod_fs.simulator.render import render_json, render_plain
from ccod_fs.simulator.template import RenderContext, compile_events

CAPTURE_FILES = ["inbound-queue", "queue-edge-cases"]


def _identity_context(events: list[FsEvent], originals: list[str]) -> RenderContext:
    first = events[0]
    node = NodeIdentity(first.get("Core-UUID"), first.get("FreeSWITCH-Hostname"), first.get("FreeSWITCH-IPv4"),
                        first.get("FreeSWITCH-IPv6"))
    return RenderContext(node, list(originals))


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_json_payloads_are_byte_identical_to_the_capture(name: str) -> None:
    raw = (FIXTURES / f"esl-json-{name}.raw").read_bytes()
    frames, errors = iter_frames(raw)
    assert not errors
    bodies = [f.body for f in frames if f.content_type == "text/event-json"]
    events = events_from_json_capture(raw)
    templates = compile_events(events)
    ctx = _identity_context(events, templates.uuid_originals)
    rendered = [render_json(t, ctx, t.seq) for t in templates.templates]
    assert len(rendered) == len(bodies) > 390
    assert rendered == bodies


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_plain_payloads_are_byte_identical_to_the_capture(name: str) -> None:
    frames, errors = iter_frames((FIXTURES / f"esl-plain-{name}.raw").read_bytes())
    assert not errors
    bodies = [f.body for f in frames if f.content_type == "text/event-plain"]
    events = []
    for body in bodies:
        head, _, rest = body.decode().partition("\n\n")
        headers: list[tuple[str, str | list[str]]] = []
        for line in head.split("\n"):
            key, _, value = line.partition(": ")
            value = unquote(value)
            headers.append((key, value[7:].split("|:") if value.startswith("ARRAY::") else value))
        events.append(FsEvent(headers, rest or None))
    templates = compile_events(events)
    ctx = _identity_context(events, templates.uuid_originals)
    rendered = [render_plain(t, ctx, t.seq) for t in templates.templates]
    assert rendered == bodies


def test_url_encoding_matches_freeswitch_on_the_tricky_values() -> None:
    assert url_encode("fd00::2") == "fd00%3A%3A2"
    assert url_encode("Wed, 25 Nov 2026 17:57:50 GMT") == "Wed,%2025%20Nov%202026%2017%3A57%3A50%20GMT"
    assert url_encode("tone_stream://%(1000,500,440);loops=3") == "tone_stream%3A//%25(1000,500,440)%3Bloops%3D3"
    assert url_encode("ARRAY::7000|:7000") == "ARRAY%3A%3A7000%7C%3A7000"
    assert url_encode("Caller\r\nEvent-Name: X") == "Caller%0D%0AEvent-Name%3A%20X"
    assert url_encode("Zoë") == "Zo%C3%AB"
