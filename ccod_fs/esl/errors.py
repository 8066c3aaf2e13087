"""ESL wire errors. ``reason`` is a stable kebab-case id: it names the dead letter and the metric label."""

from __future__ import annotations


class EslProtocolError(Exception):
    """Bytes from FreeSWITCH that are not a valid Event Socket frame or event."""

    def __init__(self, reason: str, detail: str, raw: bytes = b"") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.raw = raw


class FrameError(EslProtocolError):
    """The framing itself is broken (headers, Content-Length, truncation)."""


class EslDecodeError(EslProtocolError):
    """A well-framed event whose body cannot be decoded (bad UTF-8, bad JSON, bad header line)."""
