"""Helpers for the simulator tests: an ordered capture reader and a blocking ESL client.

The capture reader keeps header *order and duplicates* (``EslEvent.headers`` is a dict),
which is what the shape tests compare; decoding itself goes through the project's
``ccod_fs.esl`` decoder.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from pathlib import Path

import orjson

from ccod_fs.esl.decode import decode_event, is_event
from ccod_fs.esl.event import EslEvent
from ccod_fs.esl.frames import Frame, FrameParser, iter_frames

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "freeswitch"
CAPTURES = {
    "inbound-queue": FIXTURES / "esl-json-inbound-queue.raw",
    "queue-edge-cases": FIXTURES / "esl-json-queue-edge-cases.raw",
}


def ordered_json_events(raw: bytes) -> list[list[tuple[str, object]]]:
    """Header lists (order and duplicates kept) of every text/event-json frame in ``raw``."""
    frames, errors = iter_frames(raw)
    assert not errors, errors
    return [
        orjson_pairs(frame.body) for frame in frames if frame.content_type == "text/event-json"
    ]


def orjson_pairs(body: bytes) -> list[tuple[str, object]]:
    import json

    return json.loads(body, object_pairs_hook=list)


def kind(headers: dict[str, object] | list[tuple[str, object]]) -> tuple[str, str, str]:
    h = dict(headers)
    return (str(h.get("Event-Name")), str(h.get("Event-Subclass", "")), str(h.get("CC-Action", "")))


def kind_counts(events: list[list[tuple[str, object]]]) -> Counter[tuple[str, str, str]]:
    return Counter(kind(ev) for ev in events)


class EslTestClient:
    """A blocking inbound ESL client that keeps every frame it receives."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.parser = FrameParser()
        self.frames: list[Frame] = []
        self.eof = False

    def send(self, command: str) -> None:
        self.sock.sendall(command.encode() + b"\n\n")

    def read_until(self, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met; {len(self.frames)} frames so far")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except (ConnectionResetError, TimeoutError):
                data = b""
                if time.monotonic() >= deadline:
                    raise
            if not data:
                self.eof = True
                self.parser.finish()
                return
            self.frames.extend(self.parser.feed(data))

    def pump(self, until, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        """Keep reading (so the server never blocks on us) until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.1)
        while not until():
            if time.monotonic() > deadline:
                raise TimeoutError("pump: condition not met")
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                self.eof = True
                return
            self.frames.extend(self.parser.feed(data))

    def read_frames(self, count: int, timeout: float = 10.0) -> list[Frame]:
        self.read_until(lambda: len(self.frames) >= count, timeout)
        return self.frames[:count]

    def login(self, password: str, subscribe: str | None = "event json ALL") -> None:
        start = len(self.frames)
        self.read_until(lambda: len(self.frames) >= start + 1)
        self.send(f"auth {password}")
        self.read_until(lambda: len(self.frames) >= start + 2)
        if subscribe:
            self.send(subscribe)
            self.read_until(lambda: len(self.frames) >= start + 3)

    def events(self) -> list[EslEvent]:
        return [decode_event(f) for f in self.frames if is_event(f)]

    def event_frames(self) -> list[Frame]:
        return [f for f in self.frames if is_event(f)]

    def wait_events(self, count: int, timeout: float = 20.0) -> list[EslEvent]:
        self.read_until(lambda: sum(1 for f in self.frames if is_event(f)) >= count, timeout)
        return self.events()

    def close(self) -> None:
        self.sock.close()


def json_dumps(value: object) -> bytes:
    return orjson.dumps(value)
