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

    __slots__ = ("_buf", "_need", "_pending", "errors")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: dict[str, str] | None = None
        self._need = 0
        self.errors: list[FrameError] = []

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def take_errors(self) -> list[FrameError]:
        errors, self.errors = self.errors, []
        return errors

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        while True:
            if self._pending is not None:
                if len(buf) - pos < self._need:
                    break
                end = pos + self._need
                frames.append(Frame(self._pending, bytes(buf[pos:end])))
                self._pending = None
                pos = end
                continue
            # Tolerate stray blank lines between frames (FreeSWITCH never sends them, but harmless).
            while pos < len(buf) and buf[pos] == 0x0A:
                pos += 1
            cut = buf.find(b"\n\n", pos)
            if cut < 0:
                if len(buf) - pos > MAX_HEADER_BLOCK:
                    pos = self._resync(pos, FrameError("header-too-large", "no blank line within 64 KiB",
                                                       bytes(buf[pos:pos + 512])))
                    continue
                break
            if cut - pos > MAX_HEADER_BLOCK:
                pos = self._resync(pos, FrameError("header-too-large", "header block over 64 KiB",
                                                   bytes(buf[pos:pos + 512])))
                continue
            try:
                headers = _parse_header_block(bytes(buf[pos:cut]))
                length = self._content_length(headers, bytes(buf[pos:cut]))
            except FrameError as exc:
                pos = self._resync(pos, exc)
                continue
            pos = cut + 2
            if length:
                self._pending = headers
                self._need = length
            else:
                frames.append(Frame(headers))
        del buf[:pos]
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

    def _resync(self, pos: int, error: FrameError) -> int:
        """Record ``error`` and skip to the next plausible frame start after ``pos``."""
        match = _FRAME_START.search(self._buf, pos + 1)
        end = match.start() if match else len(self._buf)
        if match is None and len(self._buf) - pos < MAX_HEADER_BLOCK:
            # Keep a tail: the next frame's start may still be arriving.
            end = max(pos + 1, len(self._buf) - 64)
        error.raw = bytes(self._buf[pos:end])[:65536]
        self.errors.append(error)
        return end

    def finish(self) -> None:
        """The stream ended: anything left over is a truncated frame."""
        if self._pending is not None or self._buf.strip(b"\n"):
            missing = self._need - len(self._buf) if self._pending is not None else 0
            self.errors.append(
                FrameError("truncated-frame", f"stream ended mid-frame ({missing} body bytes missing)",
                           bytes(self._buf[:65536]))
            )
        self._buf.clear()
        self._pending = None
        self._need = 0


def iter_frames(data: bytes) -> tuple[list[Frame], list[FrameError]]:
    """Parse a whole byte string (a capture file) into frames and errors."""
    parser = FrameParser()
    frames = parser.feed(data)
    parser.finish()
    return frames, parser.take_errors()
