"""Inbound Event Socket connection: greenswitch for connect/auth/commands, our framing for reads.

The ingest swaps the parser for its native reader (``parser=``), which keeps ``text/event-json``
frames for itself (decoded and normalized natively) and hands every other frame back to be
handled here.

greenswitch's reader URL-decodes whole frames and stops on ``text/event-json``
bodies, so :meth:`EslConnection.receive_events` replaces it with
:class:`~ccod_fs.esl.frames.FrameParser` + :mod:`ccod_fs.esl.decode`, while
``send``/``api``/``bgapi`` and the auth handshake stay greenswitch's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import greenswitch
import structlog

from ccod_fs.esl.decode import decode_event, is_event
from ccod_fs.esl.errors import EslProtocolError, FrameError
from ccod_fs.esl.event import EslEvent
from ccod_fs.esl.frames import Frame, FrameParser

log = structlog.get_logger(__name__)

EventHandler = Callable[[EslEvent], None]
ErrorHandler = Callable[[EslProtocolError], None]

READ_SIZE = 256 * 1024


class FrameSource(Protocol):
    """What the reader needs of a parser (:class:`FrameParser`, or the ingest's native reader)."""

    def feed(self, data: bytes) -> list[Frame]: ...

    def take_errors(self) -> list[FrameError]: ...

    def finish(self) -> None: ...


@dataclass(slots=True)
class Reply:
    """A command/reply or api/response, shaped like greenswitch's so its ``send`` can carry it."""

    headers: dict[str, str]
    data: str


class EslConnection(greenswitch.InboundESL):  # type: ignore[misc]
    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        on_event: EventHandler,
        on_error: ErrorHandler,
        on_batch_end: Callable[[], None] | None = None,
        parser: FrameSource | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, password, timeout=timeout)
        self._on_event = on_event
        self._on_error = on_error
        self._on_batch_end = on_batch_end
        self.parser: FrameSource = parser or FrameParser()
        self.bytes_in = 0
        self.closed_reason: str | None = None

    # greenswitch spawns this greenlet from connect().
    def receive_events(self) -> None:
        while self._run:
            try:
                data = self.sock.recv(READ_SIZE)
            except OSError as exc:
                self._lost(f"socket-error: {exc}")
                break
            if not data:
                self._lost("eof")
                break
            self.bytes_in += len(data)
            self._handle_frames(self.parser.feed(data))
            for error in self.parser.take_errors():
                self._on_error(error)
            if self._on_batch_end is not None:
                self._on_batch_end()

    def _lost(self, reason: str) -> None:
        self.parser.finish()
        for error in self.parser.take_errors():
            self._on_error(error)
        self.closed_reason = reason
        self.connected = False
        self._run = False
        self._auth_request_event.set()
        for pending in self._commands_sent:
            pending.set_exception(greenswitch.esl.NotConnectedError(reason))
        self._commands_sent.clear()

    def _handle_frames(self, frames: Iterable[Frame]) -> None:
        on_event = self._on_event
        for frame in frames:
            if is_event(frame):
                try:
                    event = decode_event(frame)
                except EslProtocolError as exc:
                    self._on_error(exc)
                    continue
                on_event(event)
                continue
            content_type = frame.content_type
            if content_type == "auth/request":
                self._auth_request_event.set()
            elif content_type in ("command/reply", "api/response"):
                text = frame.headers.get("Reply-Text", "") if content_type == "command/reply" else ""
                if content_type == "api/response":
                    text = frame.body.decode("utf-8", errors="replace")
                if self._commands_sent:
                    self._commands_sent.pop(0).set(Reply(frame.headers, text))
                else:
                    self._on_error(EslProtocolError("unexpected-reply", f"{content_type} with no command pending"))
            elif content_type in ("text/disconnect-notice", "text/rude-rejection"):
                log.info("esl.disconnect_notice", content_type=content_type)
                if frame.headers.get("Content-Disposition") != "linger":
                    self.connected = False
                    self._auth_request_event.set()
            else:
                self._on_error(
                    EslProtocolError("unsupported-content-type", f"frame {content_type!r} ignored", frame.body)
                )

    def authenticate(self) -> None:
        reply = self.send(f"auth {self.password}")
        if not reply.data.startswith("+OK"):
            raise PermissionError(f"ESL authentication refused: {reply.data}")

    def api(self, command: str) -> str:
        reply: Reply = self.send(f"api {command}")
        return reply.data

    def bgapi(self, command: str, job_uuid: str | None = None) -> str:
        """Start a background job; returns its Job-UUID (the result arrives as BACKGROUND_JOB)."""
        line = f"bgapi {command}"
        if job_uuid:
            line += f"\nJob-UUID: {job_uuid}"
        reply: Reply = self.send(line)
        if not reply.data.startswith("+OK"):
            raise RuntimeError(f"bgapi refused: {reply.data}")
        return reply.headers.get("Job-UUID", reply.data.rpartition(" ")[2])

    def subscribe(self, events: Iterable[str], fmt: str = "json") -> None:
        reply: Reply = self.send(f"event {fmt} {' '.join(events)}")
        if not reply.data.startswith("+OK"):
            raise RuntimeError(f"event subscription refused: {reply.data}")

    def close(self) -> None:
        try:
            self.stop()
        except Exception as exc:  # closing a dead socket must never mask the real error
            log.debug("esl.close_failed", error=str(exc))
