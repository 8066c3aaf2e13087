"""One inbound Event Socket client: a reader thread for commands, a writer thread for bytes.

Events reach a client through a bounded per-connection queue, as in mod_event_socket:
when the client reads too slowly the queue fills and, with ``overflow="drop"``, events
are dropped (the client sees Event-Sequence gaps, like a real switch under a slow
listener); with ``overflow="block"`` the player waits instead. Test options: close the
connection after N events, inject garbage frames, trickle bytes in small pieces.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Protocol

import structlog

from ccod_fs.simulator.subscription import Subscription
from ccod_fs.simulator.wire import DISCONNECT_NOTICE, JSON_PREFIX, PLAIN_PREFIX

log = structlog.get_logger(__name__)

CHUNK_BYTES = 256 * 1024

# Well-delimited broken frames: each must cost a decoder one error, never the stream.


def _framed(content_type: bytes, body: bytes) -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n\n" % (len(body), content_type) + body


GARBAGE_FRAMES: tuple[bytes, ...] = (
    _framed(b"text/event-json", b"{not json!!!}"),
    _framed(b"text/event-json", b'{"Event-Name":"\xff\xfe"}'),
    _framed(b"text/event-json", b'{"Foo":"bar"}'),
    b"this is not an event socket frame\n\n",
    _framed(b"text/event-plain", b"no colon on this line\n\n"),
)


class Sendable(Protocol):
    seq: int

    @property
    def name(self) -> str: ...

    @property
    def subclass(self) -> str: ...

    def payload(self, fmt: str) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Per-connection behaviour; the defaults behave like a healthy FreeSWITCH."""

    drop_after_events: int | None = None  # close the socket (no notice) after this many events
    garbage_every: int | None = None  # one garbage frame after every N events
    queue_limit: int = 200_000  # events queued for this client before overflow applies
    overflow: str = "block"  # "block" the player, or "drop" events like FreeSWITCH
    trickle: bool = False  # write in small random pieces (frames split across reads)
    seed: int = 0


class ClientConnection:
    """A connected client. ``handle_line`` is the server's command interpreter."""

    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        options: ConnectionOptions,
        handle_command: Callable[[ClientConnection, str], None],
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.options = options
        self.subscription = Subscription()
        self.authed = False
        self.events_sent = 0
        self.events_dropped = 0
        self.garbage_sent = 0
        self.closed = threading.Event()
        self._handle_command = handle_command
        self._queue: deque[tuple[bytes, int]] = deque()
        self._queued_events = 0
        self._cond = threading.Condition()
        self._closing = False
        self._rng = Random(options.seed)
        # Direct mode: the sending thread writes itself (no writer thread, no GIL hand-offs);
        # queue-and-drop and trickling need the writer thread.
        self._direct = options.overflow == "block" and not options.trickle
        self._send_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read_loop, name=f"esl-sim-read-{peer}", daemon=True),
            threading.Thread(target=self._write_loop, name=f"esl-sim-write-{peer}", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads if not self._direct else self._threads[:1]:
            thread.start()

    # -- outbound ----------------------------------------------------------------------------------

    def send_bytes(self, data: bytes, close_after: bool = False) -> None:
        if self._direct:
            self._send_direct(data, close_after)
            return
        with self._cond:
            if self._closing:
                return
            self._queue.append((data, 0))
            if close_after:
                self._closing = True
            self._cond.notify()

    def push_events(self, events: Sequence[Sendable]) -> None:
        """Frame the events this client subscribed to and queue them (called by the player)."""
        sub = self.subscription
        if self._closing or not sub.active:
            return
        fmt = "json" if sub.fmt == "json" else "plain"
        prefix = JSON_PREFIX if fmt == "json" else PLAIN_PREFIX
        opts = self.options
        parts: list[bytes] = []
        count = 0
        close = False
        for ev in events:
            if not sub.wants(ev.name, ev.subclass):
                continue
            payload = ev.payload(fmt)
            parts.append(prefix % len(payload))
            parts.append(payload)
            count += 1
            sent = self.events_sent + count
            if opts.garbage_every and sent % opts.garbage_every == 0:
                parts.append(GARBAGE_FRAMES[self.garbage_sent % len(GARBAGE_FRAMES)])
                self.garbage_sent += 1
            if opts.drop_after_events is not None and sent >= opts.drop_after_events:
                close = True
                break
        if not count:
            return
        self._enqueue(b"".join(parts), count, close)

    def push_framed(self, data: bytes, count: int, fmt: str) -> None:
        """Queue ``count`` events framed ahead of time in ``fmt`` (see ``stream.FramedFile``)."""
        sub = self.subscription
        if self._closing or not sub.active or ("json" if sub.fmt == "json" else "plain") != fmt:
            return
        self._enqueue(data, count, False)

    def _enqueue(self, data: bytes, count: int, close: bool) -> None:
        opts = self.options
        if self._direct:
            self.events_sent += count
            self._send_direct(data, abort_after=close)
            return
        with self._cond:
            while (opts.overflow == "block" and self._queued_events + count > opts.queue_limit
                   and self._queued_events and not self._closing):
                self._cond.wait(0.5)
            if self._closing:
                return
            if opts.overflow == "drop" and self._queued_events + count > opts.queue_limit:
                self.events_dropped += count
                return
            self.events_sent += count
            self._queue.append((data, count))
            self._queued_events += count
            if close:
                self._closing = True
                self._queue.append((b"", -1))  # abrupt close marker: no disconnect notice
            self._cond.notify()

    def _send_direct(self, data: bytes, close_after: bool = False, abort_after: bool = False) -> None:
        with self._send_lock:
            if self._closing or self.closed.is_set():
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                return
            if close_after or abort_after:
                self._closing = True
        if abort_after:
            log.info("esl_sim_drop_connection", peer=self.peer, events_sent=self.events_sent)
            self._abort()
        elif close_after:
            self.close()

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue:
                        if self._closing or self.closed.is_set():
                            return
                        self._cond.wait(0.5)
                    items = list(self._queue)
                    self._queue.clear()
                data = b"".join(item[0] for item in items)
                if data:
                    self._write(data)
                with self._cond:
                    self._queued_events -= sum(n for _, n in items if n > 0)
                    self._cond.notify_all()
                if any(n < 0 for _, n in items):
                    log.info("esl_sim_drop_connection", peer=self.peer, events_sent=self.events_sent)
                    self._abort()
                    return
        except OSError:
            pass
        finally:
            self.close()

    def _write(self, data: bytes) -> None:
        if not self.options.trickle:
            self.sock.sendall(data)
            return
        view = memoryview(data)
        while view:
            size = self._rng.randint(1, 700)
            self.sock.sendall(view[:size])
            view = view[size:]
            time.sleep(0)

    def _abort(self) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def disconnect(self, reply: bytes) -> None:
        """Send ``reply`` and the disconnect notice, then close once they are written."""
        self.send_bytes(reply + DISCONNECT_NOTICE, close_after=True)

    # -- inbound -----------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        buf = b""
        try:
            while not self.closed.is_set():
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data.replace(b"\r\n", b"\n")
                while b"\n\n" in buf:
                    command, buf = buf.split(b"\n\n", 1)
                    line = command.decode("utf-8", "replace").strip()
                    if line:
                        self._handle_command(self, line)
        except OSError:
            pass
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            if self._direct or not self._threads[1].is_alive():
                self.close()
