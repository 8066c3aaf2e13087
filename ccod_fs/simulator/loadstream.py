"""Planned calls -> one node's event stream, merged in time order, numbered as the node fires them.

Calls are opened lazily in start order and merged through a heap, so memory stays
proportional to the calls in progress, not to the run. Node-level events (agents
logging in, HEARTBEAT + RE_SCHEDULE every 20 s) interleave with the calls' events.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache, partial
from random import Random

from ccod_fs.simulator.archetypes import archetype
from ccod_fs.simulator.capture_data import load_scenario_events
from ccod_fs.simulator.commands import uptime_text
from ccod_fs.simulator.loadgen import SECOND, CallPlan, LoadSimulation
from ccod_fs.simulator.model import FsEvent, NodeIdentity
from ccod_fs.simulator.render import render_event
from ccod_fs.simulator.state import SwitchState
from ccod_fs.simulator.stream import StreamEvent, fresh_uuids
from ccod_fs.simulator.synth import LazyEvent, agent_status_event, encode_json, encode_plain
from ccod_fs.simulator.template import (
    EventTemplate,
    Parts,
    RenderContext,
    SlotTable,
    TemplateSet,
    compile_events,
)

HEARTBEAT_US = 20 * SECOND
_HOLD_WHERE = {
    "CHANNEL_HOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", "1210", "HELD"),
    "CHANNEL_UNHOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", "1210", "ACTIVE"),
}


@cache
def heartbeat_templates() -> TemplateSet:
    events = load_scenario_events("inbound-queue")
    first = next(i for i, ev in enumerate(events) if ev.name == "HEARTBEAT")
    return compile_events([events[first], events[first + 1]])


@cache
@cache
def registration_templates() -> TemplateSet:
    """An agent phone registering: sofia::pre_register, register_attempt, register, MESSAGE_QUERY.

    ``sofia::register`` lists the directory user's variables last; the captured switch had the
    vanilla user (toll_allow ... callgroup), ccod-fs's directory (``fs-dialplan/directory``) gives
    each agent ``ccod_tenant``, ``ccod_agent`` and ``user_context`` instead, so those replace them.
    """
    events = load_scenario_events("inbound-queue")
    first = next(i for i, ev in enumerate(events) if ev.subclass == "sofia::pre_register")
    ids = {events[first].get("from-user"): "ext", events[first].get("call-id"): "sip_call_id"}
    tset = compile_events(events[first:first + 4], ids)
    for n, tpl in enumerate(tset.templates):
        names = [name for name, _ in tpl.headers]
        if tpl.subclass == "sofia::register" and "toll_allow" in names:
            cut = names.index("toll_allow")
            user_vars: list[tuple[str, Parts | list[Parts]]] = [
                ("ccod_tenant", (("id", "tenant"),)), ("ccod_agent", (("id", "ext"),)),
                ("user_context", ("default",)),
            ]
            tset.templates[n] = replace(tpl, headers=tpl.headers[:cut] + user_vars)
    return tset


@cache
def _hold_template(tpl: EventTemplate, name: str) -> EventTemplate:
    """A CHANNEL_HOLD/UNHOLD built on a bridged leg's channel event (same channel headers)."""
    file, func, line, callstate = _HOLD_WHERE[name]
    fixed = {"Event-Name": name, "Event-Calling-File": file, "Event-Calling-Function": func,
             "Event-Calling-Line-Number": line, "Channel-Call-State": callstate}
    headers = [(key, (fixed[key],) if key in fixed else value) for key, value in tpl.headers]
    return replace(tpl, name=name, headers=headers, json_fmt=None, plain_fmt=None)


# mod_dptools' ``event`` application (FreeSWITCH 1.10+, event_function): it creates a
# CHANNEL_APPLICATION event; ``Event-Name=CUSTOM`` renames it and moves the Event-Name header
# after the delivery headers; ``Event-Subclass=...`` only sets the subclass ESL listeners filter
# on (no header), which is why fs-dialplan repeats it as ``ccod_subclass``; other pairs become
# headers in order; the channel's data follows (switch_channel_event_set_data).
_EVENT_APP = {"Event-Calling-File": "mod_dptools.c", "Event-Calling-Function": "event_function",
              "Event-Calling-Line-Number": "1525"}


@cache
def _transfer_template(tpl: EventTemplate) -> EventTemplate:
    """``CUSTOM ccod::queue`` ``ccod_action=transfer`` as fs-dialplan's transfer extension fires it on the
    caller's leg (channel data of ``tpl``, a caller-leg channel event); the target is the call's
    ``transfer_target`` identity."""
    headers: list[tuple[str, Parts | list[Parts]]] = []
    stage = "delivery"  # delivery headers, then the base event's own headers (dropped), then channel data
    for key, value in tpl.headers:
        if key == "Event-Name":
            continue
        if key == "Channel-State":
            stage = "channel"
        if stage == "own":
            continue
        headers.append((key, (_EVENT_APP[key],) if key in _EVENT_APP else value))
        if key == "Event-Sequence":
            stage = "own"
            headers += [("Event-Name", ("CUSTOM",)), ("ccod_subclass", ("ccod::queue",)),
                        ("ccod_action", ("transfer",)), ("ccod_transfer_kind", ("blind",)),
                        ("ccod_transfer_target", (("id", "transfer_target"),))]
    # Its own slot table: the archetype's table is shared by every call, and only transferred calls
    # have a transfer target to fill in.
    return replace(tpl, name="CUSTOM", subclass="ccod::queue", cc_action="", headers=headers, json_fmt=None,
                   plain_fmt=None, dynamic=(), table=SlotTable())


@dataclass(slots=True)
class SessionStats:
    """What a node's HEARTBEAT reports about sessions, counted from the channels it created."""

    booted_us: int
    live: int = 0
    since_start: int = 0
    peak: int = 0

    def created(self) -> None:
        self.live += 1
        self.since_start += 1
        self.peak = max(self.peak, self.live)

    def snapshot(self) -> SessionStats:
        return SessionStats(self.booted_us, self.live, self.since_start, self.peak)


class HeartbeatEvent:
    """The captured HEARTBEAT with this node's uptime and session counters filled in."""

    __slots__ = ("_cache", "seq", "source", "stats", "ts")

    def __init__(self, source: StreamEvent, stats: SessionStats) -> None:
        self.source = source
        self.stats = stats
        self.ts = source.ts
        self.seq = source.seq
        self._cache: dict[str, bytes] = {}

    name = "HEARTBEAT"
    subclass = ""

    def event(self) -> FsEvent:
        base = render_event(self.source.tpl, self.source.ctx, self.seq)
        up_us = self.ts - self.stats.booted_us
        live, peak = str(self.stats.live), str(self.stats.peak)
        fresh = {"Up-Time": uptime_text(up_us), "Uptime-msec": str(up_us // 1000), "Session-Count": live,
                 "Session-Since-Startup": str(self.stats.since_start), "Session-Peak-Max": peak,
                 "Session-Peak-FiveMin": peak}
        return FsEvent([(k, fresh.get(k, v)) for k, v in base.headers], base.body)

    def payload(self, fmt: str) -> bytes:
        if fmt not in self._cache:
            self._cache[fmt] = encode_json(self.event()) if fmt == "json" else encode_plain(self.event())
        return self._cache[fmt]


_MEMBER_STATE = {"member-queue-start": "Waiting", "agent-offering": "Trying", "bridge-agent-start": "Answered"}


def _track_members(members: dict[str, dict[int, str]], ev: StreamEvent) -> None:
    """mod_callcenter's members table per queue, so members-count and presence tell the live size.

    CC-Count counts waiting, trying and answered members; the presence text counts those not
    yet answered ("Active (N waiting)" or "Idle"), as the captures show.
    """
    queue = members.setdefault(ev.ctx.ids.get("queue", ""), {})
    key = id(ev.ctx)
    action = ev.tpl.cc_action
    if action in _MEMBER_STATE:
        queue[key] = _MEMBER_STATE[action]
    elif action == "bridge-agent-fail" and key in queue:
        queue[key] = "Waiting"
    elif action == "member-queue-end":
        queue.pop(key, None)
    if ev.tpl.dynamic:
        waiting = sum(1 for state in queue.values() if state != "Answered")
        ev.overrides = {"count": str(len(queue)), "presence": f"Active ({waiting} waiting)" if waiting else "Idle"}


class CallStream:
    """The events of one planned call, in its own time order."""

    def __init__(self, plan: CallPlan, node: NodeIdentity) -> None:
        arch = plan.arch
        self.plan = plan
        uuids = fresh_uuids(Random(plan.uuid_seed), len(arch.templates.uuid_originals))
        ids = {
            "caller": plan.caller, "tenant": plan.queue.tenant, "queue": plan.queue.full,
            "queue_name": plan.queue.name, "entry": plan.queue.entry,
            "sip_call_id": f"{plan.index + 1}-{plan.uuid_seed % 1_000_000}@127.0.0.1",
        }
        for k in range(arch.agents):
            agent = plan.agents[min(k, len(plan.agents) - 1)]
            ids[f"agent{k}"] = agent
            ids[f"agent{k}_ext"] = agent.split("@")[0]
        if plan.transfer_to is not None:
            ids["transfer_target"] = plan.transfer_to
        self.ctx = RenderContext(node, uuids, ids, plan.breaks, plan.shifts)

    def events(self) -> Iterator[StreamEvent]:
        plan, ctx = self.plan, self.ctx
        templates = plan.arch.templates.templates
        extra = self._holds() if plan.holds else []
        if plan.transfer_to is not None:
            extra.append(self._transfer())
        for tpl in templates:
            ts = ctx.warp(tpl.ts)
            while extra and extra[0].ts <= ts:
                yield extra.pop(0)
            yield StreamEvent(tpl, ctx, ts)
        yield from extra

    def _shifted(self, base: EventTemplate, at: int) -> RenderContext:
        """This call's context, warped so that ``base`` (captured at ``base.ts``) renders at ``at``."""
        k = bisect.bisect_right(self.ctx.breaks, base.ts)
        breaks = [*self.ctx.breaks[:k], base.ts, *self.ctx.breaks[k:]]
        shifts = [*self.ctx.shifts[:k + 1], at - base.ts, *[at - base.ts] * (len(self.ctx.breaks) - k)]
        return RenderContext(self.ctx.node, self.ctx.uuids, self.ctx.ids, breaks, shifts)

    def _transfer(self) -> StreamEvent:
        """The agent's blind transfer, fired on the caller's leg as the talk ends (before any leg hangs up).

        Channel data from the caller's CHANNEL_BRIDGE (an active, bridged leg), rendered at the time
        of the caller's CHANNEL_HANGUP: the simulator keeps the archetype's ending, in which the
        caller's leg then ends (the transfer target's side is not simulated).
        """
        templates = self.plan.arch.templates.templates
        caller = templates[0].unique_id
        base = next(t for t in templates if t.name == "CHANNEL_BRIDGE" and t.unique_id == caller)
        hangup = next(t for t in templates if t.name == "CHANNEL_HANGUP" and t.unique_id == caller)
        at = self.ctx.warp(hangup.ts)
        return StreamEvent(_transfer_template(base), self._shifted(base, at), at)

    def _holds(self) -> list[StreamEvent]:
        templates = self.plan.arch.templates.templates
        start = self.plan.arch.milestone("bridge-agent-start")
        agent_leg = templates[start].unique_id
        base = next((t for t in templates[start:] if t.name == "CALL_UPDATE" and t.unique_id == agent_leg),
                    templates[start])
        out = []
        for begin, end in self.plan.holds:
            for name, at in (("CHANNEL_HOLD", begin), ("CHANNEL_UNHOLD", end)):
                out.append(StreamEvent(_hold_template(base, name), self._shifted(base, at), at))
        return out


class NodeLoad:
    """One node's share of a :class:`LoadSimulation`, playable by a :class:`SimulatorServer`."""

    def __init__(self, simulation: LoadSimulation, node_index: int) -> None:
        self.simulation = simulation
        self.node_index = node_index
        self.node = simulation.nodes[node_index]
        self.plans = sorted(simulation.node_plans(node_index), key=lambda p: (p.warp(
            p.arch.templates.templates[0].ts), p.index))
        self.queues = [q for q in simulation.queues if q.node == node_index]

    def configure(self, state: SwitchState) -> None:
        state.configure(
            [(a, f"[leg_timeout=10,ccod_tenant={q.tenant},ccod_agent={a.split('@')[0]}]user/"
                 f"{a.split('@')[0]}@127.0.0.1") for q in self.queues for a in q.agents],
            [(q.full, "0") for q in self.queues],
        )

    def max_events(self) -> int:
        """An upper bound of the events ``events()`` yields (a span of Event-Sequence to reserve)."""
        agents = sum(len(q.agents) for q in self.queues)
        calls = sum(len(p.arch.templates.templates) + 2 * len(p.holds) + (p.transfer_to is not None)
                    for p in self.plans)
        start = self.simulation.profile.start_us
        end = max((p.warp(p.arch.templates.templates[-1].ts) for p in self.plans), default=start)
        beats = 2 * (max(end - start, 0) // HEARTBEAT_US + 2)
        return len(registration_templates().templates) * agents + agents + calls + beats

    def events(
        self, node: NodeIdentity | None = None, seq_start: int = 1
    ) -> Iterator[StreamEvent | LazyEvent | HeartbeatEvent]:
        node = node or self.node
        seq = seq_start
        start = self.simulation.profile.start_us
        registration = registration_templates()
        agents = [a for q in self.queues for a in q.agents]
        step = min(10_000, SECOND // max(len(agents), 1))
        for k, agent in enumerate(agents):  # phones register (in the second before start), then log in
            at = start - SECOND + k * step
            ids = {"ext": agent.split("@")[0], "tenant": agent.split("@")[1],
                   "sip_call_id": f"{k + 1}-{node.core_uuid[:8]}@127.0.0.1"}
            ctx = RenderContext(node, [], ids, shifts=[at - registration.first_ts])
            for tpl in registration.templates:
                yield StreamEvent(tpl, ctx, ctx.warp(tpl.ts), seq)
                seq += 1
        for agent in agents:
            login = LazyEvent(partial(agent_status_event, node, start, agent=agent, status="Available"), start,
                              "CUSTOM", "callcenter::info")
            login.seq = seq
            yield login
            seq += 1
        for ev in self._merged(node, start):
            ev.seq = seq
            seq += 1
            yield ev

    def _merged(self, node: NodeIdentity, start: int) -> Iterator[StreamEvent | HeartbeatEvent]:
        heap: list[tuple[int, int, StreamEvent, Iterator[StreamEvent]]] = []
        order = 0
        stats = SessionStats(booted_us=start - 2 * SECOND)
        members: dict[str, dict[int, str]] = {}  # queue -> member (call context) -> state

        def push(it: Iterator[StreamEvent]) -> None:
            nonlocal order
            first = next(it, None)
            if first is not None:
                heapq.heappush(heap, (first.ts, order, first, it))
                order += 1

        push(self._heartbeats(node, start))
        plans = iter(self.plans)
        pending = next(plans, None)
        pending_start = self._start(pending) if pending is not None else 0
        while heap or pending is not None:
            while pending is not None and (not heap or pending_start <= heap[0][0]):
                push(CallStream(pending, node).events())
                pending = next(plans, None)
                pending_start = self._start(pending) if pending is not None else 0
            if not heap:
                break
            _ts, _, ev, it = heap[0]
            following = next(it, None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following.ts, order, following, it))
                order += 1
            tpl = ev.tpl
            if tpl.cc_action or tpl.dynamic:
                _track_members(members, ev)
            name = tpl.name
            if name == "CHANNEL_CREATE":
                stats.created()
            elif name == "CHANNEL_DESTROY":
                stats.live -= 1
            elif name == "HEARTBEAT":
                if len(heap) <= 1 and pending is None:
                    return  # the last call is over: stop the heartbeat clock
                yield HeartbeatEvent(ev, stats.snapshot())
                continue
            yield ev

    @staticmethod
    def _start(plan: CallPlan) -> int:
        return plan.warp(plan.arch.templates.templates[0].ts)

    def _heartbeats(self, node: NodeIdentity, start: int) -> Iterator[StreamEvent]:
        tset = heartbeat_templates()
        beat, resched = tset.templates
        at = start + HEARTBEAT_US
        while True:
            ctx = RenderContext(node, [], shifts=[at - beat.ts])
            yield StreamEvent(beat, ctx, at)
            yield StreamEvent(resched, ctx, ctx.warp(resched.ts))
            at += HEARTBEAT_US


def archetype_of(plan: CallPlan) -> str:
    return archetype(plan.archetype).name
