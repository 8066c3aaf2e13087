"""``originate`` on a simulated node: the captured outbound leg, re-identified for the request.

Scenario 1 captured an answered originate, scenario 2 one that failed at once
(``NORMAL_TEMPORARY_FAILURE``). A request gets the answered leg unless its endpoint
is in ``FAILING_ENDPOINT_MARKERS`` (the captured failing one, or anything containing
``;fail``), re-identified with the request's number, tenant and caller id. As in the
capture, the leg's events up to answer (or hangup) come before the ``API`` and
``BACKGROUND_JOB`` events, the rest after. The app after ``&`` is not interpreted:
the answered leg plays the captured ``playback`` and hangs up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from random import Random

from ccod_fs.simulator.capture_data import load_scenario_events
from ccod_fs.simulator.model import NodeIdentity
from ccod_fs.simulator.stream import StreamEvent, fresh_uuids
from ccod_fs.simulator.template import RenderContext, TemplateSet, compile_events

FAILING_ENDPOINT_MARKERS = ("@127.0.0.1:5099", ";fail")
_VARS = re.compile(r"^\{([^}]*)\}")


@dataclass(frozen=True, slots=True)
class OriginateRequest:
    variables: dict[str, str]
    endpoint: str
    application: str

    @property
    def destination(self) -> str:
        last = self.endpoint.rsplit("/", 1)[-1]
        return last.split("@", 1)[0] or "0"

    @property
    def fails(self) -> bool:
        return any(marker in self.endpoint for marker in FAILING_ENDPOINT_MARKERS)


def parse_originate(argument: str) -> OriginateRequest | None:
    """``{a=1,b=2}sofia/external/5551009@host &playback(...)`` -> parts; None if malformed."""
    text = argument.strip()
    variables: dict[str, str] = {}
    match = _VARS.match(text)
    if match:
        for pair in match.group(1).split(","):
            key, sep, value = pair.partition("=")
            if sep:
                variables[key.strip()] = value.strip()
        text = text[match.end():]
    endpoint, _, application = text.partition(" ")
    if not endpoint:
        return None
    return OriginateRequest(variables, endpoint, application.strip())


@dataclass(frozen=True, slots=True)
class OutboundArchetype:
    templates: TemplateSet
    split: int  # events [:split] precede the API/BACKGROUND_JOB events, [split:] follow them
    result: str  # "+OK" or "-ERR <cause>"


@cache
def outbound_archetype(fails: bool) -> OutboundArchetype:
    scenario = "queue-edge-cases" if fails else "inbound-queue"
    events = load_scenario_events(scenario)
    leg = next(e.get("Unique-ID") for e in events
               if e.name == "CHANNEL_OUTGOING" and e.get("Caller-Caller-ID-Number") == "7000")
    mine = [e for e in events if e.get("Unique-ID") == leg]
    number = mine[0].get("Caller-Destination-Number")
    ids = {number: "dest", "acme": "tenant", "7000": "cid_num"}
    if not fails:
        ids["AcmeSupport"] = "cid_name"
    templates = compile_events(mine, ids)
    last_before = "CHANNEL_HANGUP_COMPLETE" if fails else "CALL_UPDATE"
    split = next(i for i, t in enumerate(templates.templates) if t.name == last_before) + 1
    cause = mine[-1].get("Hangup-Cause")
    return OutboundArchetype(templates, split, f"-ERR {cause}" if fails else "+OK")


def originate_events(
    request: OriginateRequest, node: NodeIdentity, now_us: int, rng: Random
) -> tuple[str, list[StreamEvent], list[StreamEvent]]:
    """(result text, events before the API/BACKGROUND_JOB events, events after them)."""
    arch = outbound_archetype(request.fails)
    uuids = fresh_uuids(rng, len(arch.templates.uuid_originals))
    v = request.variables
    ids = {"dest": request.destination, "tenant": v.get("ccod_tenant", ""),
           "cid_num": v.get("origination_caller_id_number", "0000000000"),
           "cid_name": v.get("origination_caller_id_name", "Outbound Call")}
    ctx = RenderContext(node, uuids, ids, shifts=[now_us - arch.templates.first_ts])
    events = [StreamEvent(t, ctx, ctx.warp(t.ts)) for t in arch.templates.templates]
    leg = uuids[arch.templates.templates[0].unique_id or 0]
    result = f"+OK {leg}\n" if arch.result == "+OK" else f"{arch.result}\n"
    return result, events[:arch.split], events[arch.split:]
