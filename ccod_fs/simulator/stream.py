"""One event of a simulated stream: a template, its render context and its place in time.

Rendering is lazy and cached per wire format, so a stream played to one JSON client
renders JSON only, and one played to several clients renders each format once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from random import Random

from ccod_fs.simulator.model import FsEvent, NodeIdentity
from ccod_fs.simulator.render import render_event, render_json, render_plain
from ccod_fs.simulator.template import EventTemplate, RenderContext
from ccod_fs.simulator.wire import event_frame


class StreamEvent:
    """An event ready to render; ``seq`` is set by the node that sends it."""

    __slots__ = ("_json", "_plain", "ctx", "overrides", "seq", "tpl", "ts")

    def __init__(self, tpl: EventTemplate, ctx: RenderContext, ts: int, seq: int = 0) -> None:
        self.tpl = tpl
        self.ctx = ctx
        self.ts = ts
        self.seq = seq
        self.overrides: dict[str, str] | None = None  # live values for the template's dynamic slots
        self._json: bytes | None = None
        self._plain: bytes | None = None

    @property
    def name(self) -> str:
        return self.tpl.name

    @property
    def subclass(self) -> str:
        return self.tpl.subclass

    def payload(self, fmt: str) -> bytes:
        if fmt == "json":
            if self._json is None:
                self._json = render_json(self.tpl, self.ctx, self.seq, self.overrides)
            return self._json
        if self._plain is None:
            self._plain = render_plain(self.tpl, self.ctx, self.seq, self.overrides)
        return self._plain

    def event(self) -> FsEvent:
        return render_event(self.tpl, self.ctx, self.seq, self.overrides)


@dataclass(slots=True)
class Sequencer:
    """A node's Event-Sequence counter (FreeSWITCH numbers every event it fires, per process)."""

    next_seq: int = 1

    def take(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq


_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (4 << 76)


def fresh_uuids(rng: Random, count: int) -> list[str]:
    """Version-4 UUIDs from a seeded RNG (deterministic scenarios); same bits as ``uuid.UUID(version=4)``."""
    out = []
    for _ in range(count):
        h = f"{(rng.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


class RenderedEvent:
    """An event whose payloads are already bytes (see :func:`prerender`)."""

    __slots__ = ("name", "payloads", "seq", "subclass", "ts")

    def __init__(self, name: str, subclass: str, seq: int, ts: int, payloads: dict[str, bytes]) -> None:
        self.name = name
        self.subclass = subclass
        self.seq = seq
        self.ts = ts
        self.payloads = payloads

    def payload(self, fmt: str) -> bytes:
        return self.payloads[fmt]


class Prerendered:
    """A scenario rendered ahead of time, so playing it costs only framing and ``sendall``."""

    def __init__(self, events: list[RenderedEvent], configure: object = None) -> None:
        self.rendered = events
        self._configure = configure

    def configure(self, state: object) -> None:
        if callable(self._configure):
            self._configure(state)

    def events(self, node: object = None, seq_start: int = 1) -> Iterator[RenderedEvent]:
        return iter(self.rendered)

    @property
    def payload_bytes(self) -> int:
        return sum(len(p) for ev in self.rendered for p in ev.payloads.values())


def prerender(scenario: object, node: NodeIdentity, fmts: tuple[str, ...] = ("json",),
              seq_start: int = 1, limit: int | None = None,
              keep: Callable[[str, str], bool] | None = None) -> Prerendered:
    """Render ``scenario.events(node, seq_start)`` (up to ``limit`` kept events) into bytes now.

    ``keep(name, subclass)`` drops events no listener subscribed to before rendering them; they
    still take their Event-Sequence numbers, so listeners see the same gaps as from a live switch.
    """
    out: list[RenderedEvent] = []
    for ev in scenario.events(node, seq_start):  # type: ignore[attr-defined]
        if keep is not None and not keep(ev.name, ev.subclass):
            continue
        out.append(RenderedEvent(ev.name, ev.subclass, ev.seq, ev.ts, {f: ev.payload(f) for f in fmts}))
        if limit is not None and len(out) >= limit:
            break
    return Prerendered(out, getattr(scenario, "configure", None))


@dataclass(frozen=True, slots=True)
class FramedChunk:
    """Whole event frames, ``count`` of them, stored at ``offset`` in a :class:`FramedFile`."""

    offset: int
    length: int
    count: int
    max_seq: int
    last_ts: int


class FramedFile:
    """A stream rendered into a file as ready-to-send ESL frames, in chunks of whole frames.

    Long throughput runs need more rendered events than fit in memory; played from the page
    cache, they cost the simulator a read and a ``sendall`` per chunk.
    """

    def __init__(self, path: Path, fmt: str, chunks: list[FramedChunk], events: int,
                 configure: object = None) -> None:
        self.path = path
        self.fmt = fmt
        self.chunks = chunks
        self.events_total = events
        self._configure = configure

    def configure(self, state: object) -> None:
        if callable(self._configure):
            self._configure(state)

    @property
    def payload_bytes(self) -> int:
        return sum(chunk.length for chunk in self.chunks)

    def read(self) -> Iterator[tuple[FramedChunk, bytes]]:
        with self.path.open("rb") as fh:
            for chunk in self.chunks:
                fh.seek(chunk.offset)
                yield chunk, fh.read(chunk.length)


def render_to_file(scenario: object, node: NodeIdentity, fmt: str, path: Path, *, seq_start: int = 1,
                   keep: Callable[[str, str], bool] | None = None, chunk_bytes: int = 4 << 20) -> FramedFile:
    """Render the events ``keep`` selects into ``path`` as ESL frames (numbered as :func:`prerender`)."""
    chunks: list[FramedChunk] = []
    pending: list[bytes] = []
    size = count = offset = events = max_seq = last_ts = 0
    with path.open("wb") as fh:

        def cut() -> None:
            nonlocal size, count, offset
            fh.write(b"".join(pending))
            chunks.append(FramedChunk(offset, size, count, max_seq, last_ts))
            offset += size
            pending.clear()
            size = count = 0

        for ev in scenario.events(node, seq_start):  # type: ignore[attr-defined]
            if keep is not None and not keep(ev.name, ev.subclass):
                continue
            frame = event_frame(ev.payload(fmt), fmt)
            pending.append(frame)
            size += len(frame)
            count += 1
            events += 1
            max_seq = max(max_seq, ev.seq)
            last_ts = max(last_ts, ev.ts)
            if size >= chunk_bytes:
                cut()
        if pending:
            cut()
    return FramedFile(path, fmt, chunks, events, getattr(scenario, "configure", None))
