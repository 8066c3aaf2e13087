"""Incremental Event Socket framing: bytes from a TCP stream -> frames.

FreeSWITCH frames are a block of ``Name: value`` lines ended by a blank line,
followed by exactly ``Content-Length`` body bytes when that header is present.
Reads may split a frame anywhere, so the parser keeps a buffer. Broken input
never raises out of :meth:`FrameParser.feed`: the error is recorded in
``errors`` (with the offending bytes) and the parser resynchronises on the next
plausible frame start, so one garbage frame costs only itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ccod_fs.esl.errors import FrameError

MAX_HEADER_BLOCK = 64 * 1024
MAX_CONTENT_LENGTH = 16 * 1024 * 1024

# Where a new frame may start, used to resynchronise after garbage.
_FRAME_START = re.compile(
    rb"Content-Length: \d{1,9}\nContent-Type: text/(?:event-json|event-plain|disconnect-notice)\n"
    rb"|Content-Type: (?:auth/request|command/reply|api/response|text/rude-rejection)\n"
)


# An event frame's outer headers exactly as FreeSWITCH sends them: parsed in one regex step. Anything else
# (command replies, odd headers, garbage) takes the general path below. At most 7 digits: under 16 MiB.
_EVENT_HEAD = re.compile(rb"Content-Length: ([0-9]{1,7})\nContent-Type: (text/event-json|text/event-plain)\n\n")
_CONTENT_TYPES = {b"text/event-json": "text/event-json", b"text/event-plain": "text/event-plain"}


@dataclass(slots=True)
class Frame:
    """One ESL frame: outer headers (as sent, not URL-decoded) and the raw body."""

    headers: dict[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def size(self) -> int:
        return len(self.body)


def _parse_header_block(block: bytes) -> dict[str, str]:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError("invalid-utf8", f"frame headers are not UTF-8 ({exc.reason})", block) from None
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        name, sep, value = line.partition(": ")
        if not sep or not name or " " in name:
            raise FrameError("malformed-header", f"not a 'Name: value' line: {line[:80]!r}", block)
        headers[name] = value
    if "Content-Type" not in headers:
        raise FrameError("missing-content-type", "frame without Content-Type", block)
    return headers


class FrameParser:
    """Feed it whatever ``recv`` returned; get back the complete frames."""

    __slots__ = ("_buf", "_need", "_pending", "_resyncing", "errors")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: dict[str, str] | None = None
        self._need = 0
        self._resyncing = False
        self.errors: list[FrameError] = []

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_errors(self) -> list[FrameError]:
        errors, self.errors = self.errors, []
        return errors

    def feed(self, data: bytes) -> list[Frame]:
        if type(data) is not bytes:
            data = bytes(data)
        frames: list[Frame] = []
        append = frames.append
        head_match = _EVENT_HEAD.match
        buf = self._buf
        pos = 0
        pending = self._pending
        if pending is not None:
            # Inside a body: complete it from just the bytes it still needs, then parse ``data`` in place
            # (re-joining the whole read with the buffer would copy every byte twice more).
            missing = self._need - len(buf)
            if len(data) < missing:
                buf += data
                return frames
            append(Frame(pending, bytes(buf) + data[:missing] if buf else data[:missing]))
            buf.clear()
            self._pending = None
            pos = missing
        elif buf:  # a header block split across reads: parse the joined bytes
            buf += data
            data = bytes(buf)
            buf.clear()
        size = len(data)
        while pos < size:
            if self._resyncing:
                # After garbage: skip to the next plausible frame start, waiting for more data if none yet.
                found = _FRAME_START.search(data, pos)
                if found is None:
                    pos = max(pos, size - 64)  # a frame start may be arriving split across reads
                    break
                pos = found.start()
                self._resyncing = False
            # The common case, one regex step: an event frame's two outer headers, then its body.
            m = head_match(data, pos)
            if m is not None:
                raw_length, content_type = m.groups()
                length = int(raw_length)
                end = m.end()
                headers = {"Content-Length": raw_length.decode(), "Content-Type": _CONTENT_TYPES[content_type]}
                if end + length > size:
                    self._pending = headers
                    self._need = length
                    pos = end
                    break
                append(Frame(headers, data[end:end + length]))
                pos = end + length
                continue
            # Tolerate stray blank lines between frames (FreeSWITCH never sends them, but harmless).
            while pos < size and data[pos] == 0x0A:
                pos += 1
            cut = data.find(b"\n\n", pos)
            if cut < 0:
                if size - pos > MAX_HEADER_BLOCK:
                    pos = self._resync(data, pos, FrameError("header-too-large", "no blank line within 64 KiB",
                                                             data[pos:pos + 512]))
                    continue
                break
            if cut - pos > MAX_HEADER_BLOCK:
                pos = self._resync(data, pos, FrameError("header-too-large", "header block over 64 KiB",
                                                         data[pos:pos + 512]))
                continue
            block = data[pos:cut]
            try:
                headers = _parse_header_block(block)
                length = self._content_length(headers, block)
            except FrameError as exc:
                pos = self._resync(data, pos, exc)
                continue
            pos = cut + 2
            if length:
                if pos + length > size:
                    self._pending = headers
                    self._need = length
                    break
                append(Frame(headers, data[pos:pos + length]))
                pos += length
            else:
                append(Frame(headers))
        if pos < size:
            buf += data[pos:] if pos else data
        return frames

    @staticmethod
    def _content_length(headers: dict[str, str], block: bytes) -> int:
        raw = headers.get("Content-Length")
        if raw is None:
            return 0
        if not raw.isdigit():
            raise FrameError("invalid-content-length", f"Content-Length {raw[:40]!r} is not a number", block)
        length = int(raw)
        if length > MAX_CONTENT_LENGTH:
            raise FrameError("content-length-too-large", f"Content-Length {length} over 16 MiB", block)
        return length

    def _resync(self, data: bytes, pos: int, error: FrameError) -> int:
        """Record ``error`` and skip to the next plausible frame start after ``pos``."""
        match = _FRAME_START.search(data, pos + 1)
        if match is None:
            # No frame start in sight yet: the loop waits for more data before parsing again.
            self._resyncing = True
            error.raw = data[pos:][:65536]
            self.errors.append(error)
            return pos + 1
        error.raw = data[pos:match.start()][:65536]
        self.errors.append(error)
        return match.start()

    def finish(self) -> None:
        """The stream ended: anything left over is a truncated frame (garbage already reported is not)."""
        if not self._resyncing and (self._pending is not None or self._buf.strip(b"\n")):
            missing = self._need - len(self._buf) if self._pending is not None else 0
            self.errors.append(
                FrameError("truncated-frame", f"stream ended mid-frame ({missing} body bytes missing)",
                           bytes(self._buf[:65536]))
            )
        self._buf.clear()
        self._pending = None
        self._need = 0
        self._resyncing = False


def iter_frames(data: bytes) -> tuple[list[Frame], list[FrameError]]:
    """Parse a whole byte string (a capture file) into frames and errors."""
    parser = FrameParser()
    frames = parser.feed(data)
    parser.finish()
    return frames, parser.take_errors()
