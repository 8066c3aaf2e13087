"""Captured events -> templates with slots for everything that changes between calls.

A template keeps a real event's header names, order, duplicates and literal values;
only identifiers and clocks become slots: UUIDs, the node's Core-UUID/host,
``Event-Sequence``, every time value (µs, epoch seconds, date strings, embedded
``transfer_history`` seconds) and the call's identities (tenant, queue, agent,
caller number). Times are kept as *capture* instants and mapped through the render
context's time warp, so a template set cut from one real call can be stretched
(longer waits, shorter talks) and every derived time stays consistent.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ccod_fs.simulator.model import FsEvent, HeaderValue, NodeIdentity
from ccod_fs.simulator.timefmt import parse_stamp

Slot = tuple  # ("uuid", k) | ("us", capture_us) | ("s", capture_us) | ("local"|"gmt"|"rfc2822", us) | ...
Parts = tuple  # tuple[str | Slot, ...]

_TOKEN = re.compile(
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?P<local>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"
    r"|(?P<gmt>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT)"
    r"|(?P<rfc2822>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000)"
    r"|(?<!\d)(?P<us>\d{16})(?!\d)"
    r"|(?<!\d)(?P<s>\d{10})(?!\d)"
)
_HOST_SLOTS = {
    "FreeSWITCH-Hostname": ("host",),
    "FreeSWITCH-Switchname": ("host",),
    "FreeSWITCH-IPv4": ("ipv4",),
    "FreeSWITCH-IPv6": ("ipv6",),
}
# Epoch-second headers and the callcenter action whose moment they record.
_BIRTH_ACTION = {
    "CC-Member-Joined-Time": "member-queue-start",
    "variable_cc_queue_joined_epoch": "member-queue-start",
    "CC-Agent-Called-Time": "agent-offering",
    "CC-Agent-Answered-Time": "bridge-agent-start",
    "variable_cc_queue_answered_epoch": "bridge-agent-start",
    "variable_cc_queue_terminated_epoch": "member-queue-end",
    "variable_cc_queue_canceled_epoch": "member-queue-end",
}
_SIBLING = re.compile(r"^variable_(.+)_(?:epoch|stamp)$")
# Identities are never substituted inside media statistics and similar counters.
_NO_IDENTITY_PREFIXES = ("variable_rtp_", "variable_playback_", "variable_switch_r_sdp", "Up-Time")


class SlotTable:
    """The distinct slots of a template set, numbered; a render context computes each once.

    Indices 0-2 are per event (sequence, body, body length) and are refreshed per render.
    """

    PER_EVENT: tuple[Slot, ...] = (("seq",), ("body",), ("bodylen",))

    def __init__(self) -> None:
        self.slots: list[Slot] = list(self.PER_EVENT)
        self.index: dict[Slot, int] = {slot: i for i, slot in enumerate(self.slots)}

    def idx(self, slot: Slot) -> int:
        found = self.index.get(slot)
        if found is None:
            found = self.index[slot] = len(self.slots)
            self.slots.append(slot)
        return found


@dataclass(slots=True, eq=False)
class EventTemplate:
    """One captured event with slots; ``ts`` and ``seq`` are the capture's values."""

    name: str
    subclass: str
    cc_action: str
    ts: int
    seq: int
    headers: list[tuple[str, Parts | list[Parts]]]
    body: Parts | None
    unique_id: int | None = None  # index into the uuid table of this event's Unique-ID
    dynamic: tuple[Slot, ...] = ()  # per-event overridable slots (queue counts)
    table: SlotTable = field(default_factory=SlotTable)
    json_fmt: tuple[list[str], Callable[[list[str]], tuple[str, ...]]] | None = None
    plain_fmt: tuple[list[str], Callable[[list[str]], tuple[str, ...]]] | None = None


@dataclass(slots=True)
class RenderContext:
    """Everything that makes one rendering of a template set unique."""

    node: NodeIdentity
    uuids: list[str]
    ids: dict[str, str] = field(default_factory=dict)
    breaks: list[int] = field(default_factory=list)  # capture µs where the time shift changes
    shifts: list[int] = field(default_factory=lambda: [0])  # len(breaks) + 1 shifts, in µs
    # Rendered slot values per (slot table, wire format): a call's ~90 events share a few
    # hundred distinct values, each computed once.
    values: dict[tuple[int, str], list[str]] = field(default_factory=dict)

    def warp(self, capture_us: int) -> int:
        if not self.breaks:
            return capture_us + self.shifts[0]
        return capture_us + self.shifts[bisect.bisect_right(self.breaks, capture_us)]


@dataclass(slots=True)
class TemplateSet:
    """Templates cut from one capture (a whole scenario or one call) and their uuid table."""

    templates: list[EventTemplate]
    uuid_originals: list[str]
    first_ts: int
    last_ts: int

    def uuid_index(self, original: str) -> int:
        return self.uuid_originals.index(original)


class TemplateCompiler:
    """Turns an ordered list of captured events into a :class:`TemplateSet`."""

    def __init__(self, events: Sequence[FsEvent], identities: dict[str, str] | None = None) -> None:
        self._events = list(events)
        self._ts = [int(ev.get("Event-Date-Timestamp", "0") or 0) for ev in self._events]
        self._actions = [ev.get("CC-Action") for ev in self._events]
        self._uuids: dict[str, int] = {}
        core = {ev.get("Core-UUID") for ev in self._events}
        self._core = core
        lo, hi = min(self._ts), max(self._ts)
        self._us_window = (lo - 600_000_000, hi + 600_000_000)
        self._s_window = (self._us_window[0] // 1_000_000, self._us_window[1] // 1_000_000)
        ids = identities or {}
        self._ids = ids
        self._id_re = (
            re.compile(
                r"(?<![0-9A-Za-z])(" + "|".join(re.escape(k) for k in sorted(ids, key=len, reverse=True))
                + r")(?![0-9A-Za-z])"
            )
            if ids
            else None
        )

    def compile(self) -> TemplateSet:
        templates = [self._compile_event(i, ev) for i, ev in enumerate(self._events)]
        table = SlotTable()
        for tpl in templates:
            tpl.table = table
        originals = sorted(self._uuids, key=self._uuids.__getitem__)
        return TemplateSet(templates, originals, min(self._ts), max(self._ts))

    # -- per event -------------------------------------------------------------------------------

    def _compile_event(self, i: int, ev: FsEvent) -> EventTemplate:
        headers: list[tuple[str, Parts | list[Parts]]] = []
        unique_id = None
        for name, value in ev.headers:
            if isinstance(value, list):
                headers.append((name, [self._value(i, name, item, ev) for item in value]))
                continue
            parts = self._value(i, name, value, ev)
            if name == "Unique-ID" and len(parts) == 1 and isinstance(parts[0], tuple):
                unique_id = parts[0][1]
            headers.append((name, parts))
        body = self._value(i, "_body", ev.body, ev) if ev.body is not None else None
        seq = ev.get("Event-Sequence")
        dynamic = tuple(v[0] for _, v in headers if isinstance(v, tuple) and len(v) == 1
                        and isinstance(v[0], tuple) and v[0][0] in ("count", "presence"))
        return EventTemplate(
            ev.name, ev.subclass, self._actions[i], self._ts[i], int(seq) if seq.isdigit() else 0,
            headers, body, unique_id, dynamic,
        )

    def _value(self, i: int, name: str, value: str, ev: FsEvent) -> Parts:
        if name == "Core-UUID" and value in self._core:
            return (("core",),)
        if name in _HOST_SLOTS:
            return (_HOST_SLOTS[name],)
        if name == "Event-Sequence":
            return (("seq",),)
        if name == "Content-Length" and ev.body is not None:
            return (("bodylen",),)
        # mod_callcenter's queue size (members-count) and its presence text: captured values by
        # default, live values when a load generator knows the queue (see RenderContext use).
        if name == "CC-Count" or (name == "force-status" and (value.startswith("Active (") or value == "Idle")):
            return ((("count" if name == "CC-Count" else "presence"), value),)
        parts: list[str | Slot] = []
        pos = 0
        for match in _TOKEN.finditer(value):
            slot = self._slot(i, name, match, ev)
            if slot is None:
                continue
            if match.start() > pos:
                parts.extend(self._identities(name, value[pos:match.start()]))
            parts.append(slot)
            pos = match.end()
        if pos < len(value) or not parts:
            parts.extend(self._identities(name, value[pos:]))
        return tuple(parts)

    def _slot(self, i: int, name: str, match: re.Match[str], ev: FsEvent) -> Slot | None:
        kind = match.lastgroup
        text = match.group()
        if kind == "uuid":
            if text in self._core:
                return ("core",)
            return ("uuid", self._uuids.setdefault(text, len(self._uuids)))
        if kind == "us":
            value = int(text)
            return ("us", value) if self._us_window[0] <= value <= self._us_window[1] else None
        if kind == "s":
            seconds = int(text)
            if not self._s_window[0] <= seconds <= self._s_window[1]:
                return None
            return ("s", self._birth(i, name, seconds, ev))
        seconds_or_none = parse_stamp(text)
        if seconds_or_none is None:
            return None
        if name in ("Event-Date-Local", "Event-Date-GMT"):
            return (kind, self._ts[i])
        return (kind, self._birth(i, name, seconds_or_none, ev))

    def _birth(self, i: int, name: str, seconds: int, ev: FsEvent) -> int:
        """The capture instant (µs) an epoch-second value was taken from."""
        sibling = _SIBLING.match(name)
        if sibling:
            micro = ev.get(f"variable_{sibling.group(1)}_uepoch")
            if micro.isdigit() and int(micro) // 1_000_000 == seconds:
                return int(micro)
        action = _BIRTH_ACTION.get(name)
        if action is not None:
            for j in range(i, -1, -1):
                if self._actions[j] == action and self._ts[j] // 1_000_000 == seconds:
                    return self._ts[j]
        for j in range(i, -1, -1):
            if self._ts[j] // 1_000_000 == seconds:
                return self._ts[j]
        for j in range(i + 1, len(self._ts)):
            if self._ts[j] // 1_000_000 == seconds:
                return self._ts[j]
        return seconds * 1_000_000 + self._ts[i] % 1_000_000

    def _identities(self, name: str, text: str) -> list[str | Slot]:
        if self._id_re is None or name.startswith(_NO_IDENTITY_PREFIXES):
            return [text]
        out: list[str | Slot] = []
        pos = 0
        for match in self._id_re.finditer(text):
            if match.start() > pos:
                out.append(text[pos:match.start()])
            out.append(("id", self._ids[match.group(1)]))
            pos = match.end()
        if pos < len(text):
            out.append(text[pos:])
        return out


def compile_events(events: Sequence[FsEvent], identities: dict[str, str] | None = None) -> TemplateSet:
    return TemplateCompiler(events, identities).compile()


def header_values(headers: list[tuple[str, HeaderValue]]) -> dict[str, HeaderValue]:
    """Last value per name (a convenience for tests and truth extraction)."""
    return dict(headers)
