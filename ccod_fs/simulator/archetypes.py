"""Real calls cut out of the captures, to be stretched and re-identified by the load generator.

Each archetype is every event one captured call caused (caller leg, agent legs,
mod_callcenter's member/agent events, the dialplan's and dial-string's API calls), in
capture order, compiled with identity slots (tenant, queue, agents, caller number).
Its timeline is split into *phases* between mod_callcenter milestones (joined,
offered, answered/failed, left); the load generator chooses each phase's duration and
the template warp stretches the phase's idle intervals to fit, so everything inside
(DTMF, media events, derived timestamps) moves consistently.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from ccod_fs.simulator.capture_data import load_scenario_events
from ccod_fs.simulator.model import FsEvent
from ccod_fs.simulator.template import TemplateSet, compile_events

MILESTONES = ("member-queue-start", "agent-offering", "bridge-agent-start", "bridge-agent-fail",
              "member-queue-end")
_CALL_API = frozenset({"strftime", "sofia_contact", "verto_contact"})
_STRETCH_MIN_US = 100_000  # intervals shorter than this are processing time, not waiting


@dataclass(frozen=True, slots=True)
class Phase:
    """Capture events ``start``..``end`` (indices): a span whose length the generator sets."""

    kind: str  # wait | ring | talk
    start: int
    end: int
    capture_us: int
    fixed_us: int  # the part that does not stretch (processing between events)
    stretch: tuple[tuple[int, int], ...]  # (event index before the interval, interval µs)


@dataclass(frozen=True, slots=True)
class Archetype:
    name: str
    outcome: str  # answered | abandoned_waiting | abandoned_ringing | timeout
    offers: tuple[str, ...]  # outcome of each agent offer: answered | NO_ANSWER | USER_BUSY | ...
    templates: TemplateSet
    phases: tuple[Phase, ...]
    milestones: tuple[tuple[str, int], ...]  # (CC-Action, event index)
    agents: int
    capture_ts: tuple[int, ...]  # Event-Date-Timestamp of each template, as captured

    def milestone(self, action: str, nth: int = 0) -> int:
        return [i for a, i in self.milestones if a == action][nth]


# name -> (scenario, caller number in the JSON capture, outcome, offers, identity literals)
_ARCHETYPES = {
    "answered-dtmf": ("inbound-queue", "5552001", "answered", ("answered",)),
    "answered": ("inbound-queue", "5552002", "answered", ("answered",)),
    "abandoned-waiting": ("inbound-queue", "5552003", "abandoned_waiting", ()),
    "answered-after-failures": ("queue-edge-cases", "5554001", "answered", ("NO_ANSWER", "USER_BUSY", "answered")),
    "answered-agent-hangup": ("queue-edge-cases", "5554002", "answered", ("answered",)),
    "abandoned-ringing": ("queue-edge-cases", "5554003", "abandoned_ringing", ("ORIGINATOR_CANCEL",)),
    "timeout": ("queue-edge-cases", "5554004", "timeout", ()),
}
ARCHETYPE_NAMES = tuple(_ARCHETYPES)


def call_events(events: Sequence[FsEvent], caller_number: str) -> list[FsEvent]:
    """The events one inbound call caused, in capture order."""
    caller_leg = next(
        ev.get("Unique-ID") for ev in events
        if ev.name == "CHANNEL_CREATE" and ev.get("Caller-Caller-ID-Number") == caller_number
        and ev.get("Call-Direction") == "inbound"
    )
    legs = {caller_leg}
    for ev in events:
        if ev.get("variable_cc_member_session_uuid") == caller_leg:
            legs.add(ev.get("Unique-ID"))
    owner: list[bool] = []
    agents_busy: set[str] = set()
    for i, ev in enumerate(events):
        mine = ev.get("Unique-ID") in legs or ev.get("CC-Member-Session-UUID") == caller_leg
        action = ev.get("CC-Action")
        if action == "agent-offering" and mine:
            agents_busy.add(ev.get("CC-Agent"))
        elif action == "agent-state-change":
            agent = ev.get("CC-Agent")
            if ev.get("CC-Agent-State") == "Receiving":
                following = next((e for e in events[i + 1:] if e.get("CC-Action") == "agent-offering"
                                  and e.get("CC-Agent") == agent), None)
                mine = following is not None and following.get("CC-Member-Session-UUID") == caller_leg
            else:
                mine = agent in agents_busy
                if mine and ev.get("CC-Agent-State") in ("Waiting", "Idle"):
                    agents_busy.discard(agent)
        elif (action == "members-count" or (ev.name == "PRESENCE_IN" and not ev.get("Unique-ID"))
              or (ev.name == "API" and ev.get("API-Command") in _CALL_API)):
            mine = bool(owner) and _previous_owner(events, owner, i)
        owner.append(mine)
    return [ev for ev, keep in zip(events, owner, strict=True) if keep]


def _previous_owner(events: Sequence[FsEvent], owner: list[bool], i: int) -> bool:
    """Queue-level follow-ups belong to the call of the nearest preceding call event."""
    for j in range(i - 1, -1, -1):
        ev = events[j]
        if ev.get("Unique-ID") or ev.get("CC-Member-Session-UUID"):
            return owner[j]
    return False


def _identities(events: Sequence[FsEvent], caller_number: str) -> tuple[dict[str, str], int]:
    ids = {caller_number: "caller"}
    sip_call_id = next((ev.get("variable_sip_call_id") for ev in events if ev.get("variable_sip_call_id")), "")
    if sip_call_id:
        ids[sip_call_id] = "sip_call_id"  # the caller's SIP Call-ID: unique per call
    for ev in events:
        for name, key in (("variable_ccod_tenant", "tenant"), ("variable_ccod_queue", "queue_name"),
                          ("variable_ccod_entry_point", "entry"), ("variable_cc_queue", "queue")):
            value = ev.get(name)
            if value and value not in ids:
                ids[value] = key
    agents = []
    for ev in events:
        if ev.get("CC-Action") == "agent-offering" and ev.get("CC-Agent") not in agents:
            agents.append(ev.get("CC-Agent"))
    for k, agent in enumerate(agents):
        ids[agent] = f"agent{k}"
        ids[agent.split("@")[0]] = f"agent{k}_ext"
    return ids, len(agents)


def _phases(ts: list[int], milestones: list[tuple[str, int]]) -> list[Phase]:
    phases = []
    for (action, start), (_, end) in itertools.pairwise(milestones):
        kind = {"member-queue-start": "wait", "bridge-agent-fail": "wait", "agent-offering": "ring",
                "bridge-agent-start": "talk"}[action]
        intervals = [(i, ts[i + 1] - ts[i]) for i in range(start, end) if ts[i + 1] - ts[i] >= _STRETCH_MIN_US]
        if not intervals and end > start:
            i = max(range(start, end), key=lambda j: ts[j + 1] - ts[j])
            intervals = [(i, max(ts[i + 1] - ts[i], 0))]
        total = ts[end] - ts[start]
        phases.append(Phase(kind, start, end, total, total - sum(d for _, d in intervals), tuple(intervals)))
    return phases


@cache
def archetype(name: str) -> Archetype:
    scenario, number, outcome, offers = _ARCHETYPES[name]
    events = call_events(load_scenario_events(scenario), number)
    ids, agents = _identities(events, number)
    templates = compile_events(events, ids)
    ts = [t.ts for t in templates.templates]
    milestones = [(t.cc_action, i) for i, t in enumerate(templates.templates) if t.cc_action in MILESTONES]
    # Abandon-while-ringing: the member leaves before the failed offer is reported; the ring phase
    # ends when the member leaves.
    ordered = [m for m in milestones if not (m[0] == "bridge-agent-fail" and outcome == "abandoned_ringing")]
    return Archetype(name, outcome, offers, templates, tuple(_phases(ts, ordered)), tuple(milestones), agents,
                     tuple(ts))
