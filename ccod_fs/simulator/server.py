"""A simulated FreeSWITCH node on a TCP port, speaking the inbound Event Socket protocol.

Plain threads and blocking sockets (no gevent), so it runs inside a test process next
to a gevent/greenswitch client. One server is one node: one Core-UUID, one
Event-Sequence counter, one live state that ``api`` commands answer from.

    server = SimulatorServer(password="secret")
    port = server.start()
    server.play(CaptureReplay("inbound-queue")).wait()
    server.stop()
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Protocol

import orjson
import structlog

from ccod_fs.simulator.commands import run_api
from ccod_fs.simulator.connection import ClientConnection, ConnectionOptions, Sendable
from ccod_fs.simulator.model import NodeIdentity
from ccod_fs.simulator.originate import originate_events, parse_originate
from ccod_fs.simulator.state import TRACKED_EVENTS, SwitchState
from ccod_fs.simulator.stream import FramedFile, Prerendered
from ccod_fs.simulator.subscription import FORMATS
from ccod_fs.simulator.synth import StaticEvent, agent_status_event, api_event, background_job_event
from ccod_fs.simulator.wire import AUTH_REQUEST, api_response, command_reply

log = structlog.get_logger(__name__)

BATCH_EVENTS = 512


class Scenario(Protocol):
    """Anything that can produce a node's event stream.

    It may also have ``configure(state: SwitchState)`` to declare its agents and queues.
    """

    def events(self, node: NodeIdentity, seq_start: int) -> Iterator[Sendable]: ...


@dataclass
class PlayHandle:
    """A scenario being played in the background."""

    thread: threading.Thread
    done: threading.Event = field(default_factory=threading.Event)
    events: int = 0
    error: BaseException | None = None
    started: float = 0.0
    finished: float = 0.0

    def wait(self, timeout: float | None = None) -> PlayHandle:
        if not self.done.wait(timeout):
            raise TimeoutError("scenario still playing")
        if self.error is not None:
            raise self.error
        return self

    @property
    def events_per_s(self) -> float:
        elapsed = (self.finished or time.perf_counter()) - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


class SimulatorServer:
    """One simulated FreeSWITCH node. ``start()`` returns the port it listens on."""

    def __init__(
        self,
        *,
        password: str,
        host: str = "127.0.0.1",
        port: int = 0,
        node: NodeIdentity | None = None,
        options: ConnectionOptions | None = None,
        track_state: bool = True,
        start_us: int | None = None,
    ) -> None:
        if not password:
            raise ValueError("an Event Socket password is required")
        self.password = password
        self.host = host
        self.port = port
        self.node = node or NodeIdentity(core_uuid=str(uuid.uuid4()))
        self.options = options or ConnectionOptions()
        self.track_state = track_state
        self.state = SwitchState(self.node.hostname)
        self.connections: list[ClientConnection] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._next_seq = 1
        self._clock_us = start_us if start_us is not None else time.time_ns() // 1000
        self._clock_wall = time.monotonic()
        self.state.started_us = self._clock_us
        self.connected = threading.Condition()
        self._rng = Random(self.node.core_uuid)  # fresh ids for originated legs, reproducible per node

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> int:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="esl-sim-accept", daemon=True)
        self._accept_thread.start()
        log.info("esl_sim_listening", host=self.host, port=self.port, core_uuid=self.node.core_uuid)
        return self.port

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(2)
        with self._lock:
            connections = list(self.connections)
        for conn in connections:
            conn.close()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = ClientConnection(sock, f"{addr[0]}:{addr[1]}", self.options, self._command)
            with self._lock:
                self.connections = [c for c in self.connections if not c.closed.is_set()] + [conn]
            conn.send_bytes(AUTH_REQUEST)
            conn.start()
            log.info("esl_sim_client_connected", peer=conn.peer)

    def wait_for_subscribers(self, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` authenticated clients have an event subscription."""
        deadline = time.monotonic() + timeout
        with self.connected:
            while len(self.subscribers()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.subscribers())} of {count} subscribers connected")
                self.connected.wait(remaining)

    def subscribers(self) -> list[ClientConnection]:
        with self._lock:
            return [c for c in self.connections if c.authed and c.subscription.active and not c.closed.is_set()]

    # -- clock and sequence ------------------------------------------------------------------------

    def now_us(self) -> int:
        with self._lock:
            return self._clock_us + int((time.monotonic() - self._clock_wall) * 1_000_000)

    def _advance_clock(self, ts_us: int) -> None:
        with self._lock:
            if ts_us > self._clock_us:
                self._clock_us = ts_us
                self._clock_wall = time.monotonic()

    def reserve_sequence(self, count: int) -> int:
        """Reserve ``count`` Event-Sequence numbers for a stream numbered elsewhere; returns the first."""
        with self._lock:
            first = self._next_seq
            self._next_seq += count
            return first

    def _take_seq(self) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    # -- playing -----------------------------------------------------------------------------------

    def play(self, scenario: Scenario, *, pace: float | None = None) -> PlayHandle:
        """Send ``scenario``'s events to every subscribed client, in a background thread.

        ``pace=None`` sends as fast as the clients read; ``pace=1.0`` follows the event
        timestamps in real time (2.0 twice as fast).
        """
        handle = PlayHandle(threading.Thread(name="esl-sim-play", daemon=True))
        handle.thread = threading.Thread(target=self._play, args=(scenario, pace, handle),
                                         name="esl-sim-play", daemon=True)
        handle.thread.start()
        return handle

    def _play(self, scenario: Scenario, pace: float | None, handle: PlayHandle) -> None:
        handle.started = time.perf_counter()
        try:
            configure = getattr(scenario, "configure", None)
            if configure is not None:
                configure(self.state)
            if isinstance(scenario, FramedFile):
                self._play_framed(scenario, handle)
                return
            # Event-Sequence is the ingest's idempotency key with Core-UUID: never reuse a number.
            # A replay keeps its captured gaps in a reserved span; other streams are numbered here.
            span = getattr(scenario, "seq_span", None)
            with self._lock:
                seq_start = self._next_seq
                if callable(span):
                    self._next_seq += span()
            renumber = not callable(span) and not isinstance(scenario, Prerendered)
            self.broadcast_stream(scenario.events(self.node, seq_start), pace, handle, renumber)
        except BaseException as exc:  # reported through handle.wait()
            handle.error = exc
            log.error("esl_sim_play_failed", error=repr(exc))
        finally:
            handle.finished = time.perf_counter()
            handle.done.set()

    def broadcast_stream(
        self, events: Iterable[Sendable], pace: float | None, handle: PlayHandle, renumber: bool = False
    ) -> None:
        batch: list[Sendable] = []
        first_ts: int | None = None
        wall0 = time.monotonic()
        max_seq = 0
        last_ts = 0
        for ev in events:
            ts = getattr(ev, "ts", 0)
            if pace:
                first_ts = ts if first_ts is None else first_ts
                due = wall0 + (ts - first_ts) / 1_000_000 / pace
                delay = due - time.monotonic()
                if delay > 0:
                    self._flush(batch)
                    handle.events += len(batch)
                    batch = []
                    time.sleep(delay)
            if renumber:
                ev.seq = self._take_seq()
            batch.append(ev)
            max_seq = max(max_seq, ev.seq)
            last_ts = max(last_ts, ts)
            if len(batch) >= BATCH_EVENTS:
                self._flush(batch)
                handle.events += len(batch)
                batch = []
                self._after_batch(max_seq, last_ts)
                if self._stopping.is_set():
                    return
        self._flush(batch)
        handle.events += len(batch)
        self._after_batch(max_seq, last_ts)

    def _play_framed(self, stream: FramedFile, handle: PlayHandle) -> None:
        """Send a stream framed ahead of time, chunk by chunk (its events are already numbered)."""
        for chunk, data in stream.read():
            for conn in self.subscribers():
                conn.push_framed(data, chunk.count, stream.fmt)
            handle.events += chunk.count
            self._after_batch(chunk.max_seq, chunk.last_ts)
            if self._stopping.is_set():
                return

    def _after_batch(self, max_seq: int, last_ts: int) -> None:
        with self._lock:
            self._next_seq = max(self._next_seq, max_seq + 1)
        self._advance_clock(last_ts)

    def _flush(self, batch: list[Sendable]) -> None:
        if not batch:
            return
        if self.track_state:
            for ev in batch:
                if ev.name in TRACKED_EVENTS:
                    self.state.observe(orjson.loads(ev.payload("json")))
        for conn in self.subscribers():
            conn.push_events(batch)

    def fire(self, event: StaticEvent) -> None:
        """Send one node-level event (API, BACKGROUND_JOB, ...) now."""
        self._flush([event])

    # -- commands ----------------------------------------------------------------------------------

    def _command(self, conn: ClientConnection, block: str) -> None:
        """One command block: the command line, then optional ``Name: value`` lines (bgapi Job-UUID)."""
        line, *header_lines = block.split("\n")
        headers = dict(h.split(": ", 1) for h in header_lines if ": " in h)
        verb, _, rest = line.partition(" ")
        verb = verb.lower()
        if not conn.authed:
            if verb != "auth":
                conn.send_bytes(command_reply("-ERR command not found"))
            elif rest.strip() == self.password:
                conn.authed = True
                conn.send_bytes(command_reply("+OK accepted"))
            else:
                log.warning("esl_sim_auth_failed", peer=conn.peer)
                conn.disconnect(command_reply("-ERR invalid"))
            return
        if verb == "event":
            fmt, _, names = rest.strip().partition(" ")
            if fmt not in FORMATS or fmt == "xml":
                conn.send_bytes(command_reply("-ERR invalid format"))
                return
            conn.subscription.fmt = fmt
            if not conn.subscription.add(names.split()):
                conn.send_bytes(command_reply("-ERR no keywords supplied"))
                return
            conn.send_bytes(command_reply(f"+OK event listener enabled {fmt}"))
            with self.connected:
                self.connected.notify_all()
        elif verb == "noevents":
            conn.subscription.remove(["ALL"])
            conn.send_bytes(command_reply("+OK no longer listening for events"))
        elif verb == "nixevent":
            conn.subscription.remove(rest.split())
            conn.send_bytes(command_reply("+OK events nixed"))
        elif verb in ("linger", "nolinger"):
            conn.send_bytes(command_reply("+OK will linger" if verb == "linger" else "+OK will not linger"))
        elif verb == "exit":
            conn.disconnect(command_reply("+OK bye"))
        elif verb == "api":
            body, later = self._api(rest)
            conn.send_bytes(api_response(body))
            self._fire_numbered(later)
        elif verb == "bgapi":
            self._bgapi(conn, rest, headers.get("Job-UUID"))
        else:
            conn.send_bytes(command_reply("-ERR command not found"))

    def _api(self, line: str) -> tuple[str, Sequence[Sendable]]:
        """Run an api command; returns its reply and the events to fire after the reply.

        Like FreeSWITCH, the API event is numbered when the command starts but sent after
        the events the command caused (an originate's channel events, an agent-status-change).
        """
        now = self.now_us()
        command, _, argument = line.strip().partition(" ")
        api_seq = self._take_seq()
        later: Sequence[Sendable] = []
        if command == "originate":
            request = parse_originate(argument)
            if request is None:
                body = "-ERR INVALID_URL\n"
            else:
                body, before, later = originate_events(request, self.node, now, self._rng)
                self._fire_numbered(before)
        else:
            result = run_api(self.state, line, now)
            body = result.body
            for agent, status in result.status_changes:
                seq = self._take_seq()
                self.fire(StaticEvent(agent_status_event(self.node, now, seq, agent, status), now, seq))
        self.fire(StaticEvent(api_event(self.node, now, api_seq, command, argument), now, api_seq))
        return body, later

    def _fire_numbered(self, events: Sequence[Sendable]) -> None:
        for ev in events:
            ev.seq = self._take_seq()
        self._flush(list(events))
        if events:
            self._advance_clock(max(getattr(ev, "ts", 0) for ev in events))

    def _bgapi(self, conn: ClientConnection, line: str, job_uuid: str | None = None) -> None:
        job = job_uuid or str(uuid.uuid4())
        conn.send_bytes(command_reply(f"+OK Job-UUID: {job}", ("Job-UUID", job)))
        command, _, argument = line.strip().partition(" ")
        body, later = self._api(line)
        now = self.now_us()
        seq = self._take_seq()
        event = background_job_event(self.node, now, seq, job, command, argument.strip(), body)
        self.fire(StaticEvent(event, now, seq))
        self._fire_numbered(later)
