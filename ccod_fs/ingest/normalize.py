"""FreeSWITCH ESL events -> canonical ccod-fs events: a pure, deterministic core.

One :class:`Normalizer` per FreeSWITCH node. ``normalize(event)`` returns zero
or more envelopes; the same event stream always yields the same envelopes
(ids are UUIDv5 of Core-UUID, Event-Sequence and position). Events a contact
center does not need return ``[]``; events that should map but cannot (no
resolvable tenant, missing header, bad timestamp) raise :class:`NormalizeError`
so the ingest dead-letters them with the reason. No I/O, no logging.

Mapping (ESL -> canonical), ``call_id`` = the caller leg's UUID on every leg:

=====================================  ===========================================
CHANNEL_CREATE / ANSWER / PARK,         call.offered, once per caller or outbound leg,
CUSTOM ccod::queue / ccod::agent        on the first of these (or BRIDGE, member-queue-start,
                                        HANGUP_COMPLETE) that carries ``variable_ccod_tenant``;
                                        direction ``internal`` when the caller is an agent's
                                        own phone (directory variable ``ccod_agent``)
CHANNEL_BRIDGE                          call.bridged (other leg and its role)
CHANNEL_HOLD / CHANNEL_UNHOLD           call.hold (held true/false)
CUSTOM ccod::queue ccod_action=transfer call.transferred (fs-dialplan's transfer extension;
                                        the subclass may come as ``ccod_subclass``: FreeSWITCH's
                                        event app sets no Event-Subclass header)
DTMF                                    call.dtmf
RECORD_START / RECORD_STOP              call.recording
CHANNEL_HANGUP_COMPLETE                 call.ended (per leg: role, cause, who, durations, codecs)
callcenter::info (see cc_actions)       call.queued/agent_offered/agent_failed/answered/
                                        agent_ended/dequeued, agent.status_changed/state_changed
sofia::register (see node_events)       agent.registered
sofia::unregister / sofia::expire       agent.unregistered
BACKGROUND_JOB                          command.result
HEARTBEAT                               node.heartbeat
=====================================  ===========================================

Tenants: a call's tenant is ``variable_ccod_tenant`` of its caller (or
outbound) leg, set by the dialplan or the originate; every other leg and every
bare mod_callcenter event of the call inherits it through :class:`CallBook`.
Legs join a call by ``cc_member_session_uuid`` (mod_callcenter agent legs),
``ccod_call_id`` (legs our actuator originates for a call; an agent leg when
``ccod_agent`` is set) or ``originating_leg_uuid`` / ``Other-Leg-Unique-ID``
(b-legs of a dialplan bridge); any other outbound leg is a call of its own.
Agents: see :mod:`ccod_fs.ingest.agent_book`. Registrations: directory
variable ``ccod_tenant``, else the SIP domain through ``domain_tenants`` /
``domain_is_tenant``. Node events (heartbeat, commands without a
``ccod_tenant``) carry ``system_tenant``, a reserved tenant id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ccod_fs.contract.envelope import Envelope
from ccod_fs.contract.events import (
    CallBridged,
    CallBridgedPayload,
    CallDtmf,
    CallDtmfPayload,
    CallEnded,
    CallEndedPayload,
    CallHold,
    CallHoldPayload,
    CallOffered,
    CallOfferedPayload,
    CallRecording,
    CallRecordingPayload,
    CallTransferred,
    CallTransferredPayload,
)
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest import node_events
from ccod_fs.ingest.agent_book import AgentBook
from ccod_fs.ingest.call_legs import AGENT, CALLER, OTHER, OUTBOUND, Call, CallBook, Leg
from ccod_fs.ingest.cc_actions import CC_ACTIONS, Action
from ccod_fs.ingest.channel_resync import resync_agents, resync_channels
from ccod_fs.ingest.envelopes import EventBuilder, at, at_or_none, construct, span_ms
from ccod_fs.ingest.esl_values import (
    MAX_US,
    MIN_US,
    Headers,
    bad_header,
    checked,
    epoch_us,
    is_tenant_id,
    nonempty,
    odd_value,
    small_int,
    text,
)
from ccod_fs.ingest.normalize_error import NormalizeError

__all__ = ["CONSUMED_CUSTOM", "CONSUMED_EVENTS", "NormalizeError", "Normalizer"]

Handler = Callable[[Headers, EslEvent, EventBuilder], None]

_DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")
_TRANSFER_KINDS = frozenset({"blind", "attended", "queue"})  # CallTransferredPayload.kind
_DIALPLAN_SUBCLASSES = frozenset({"ccod::queue", "ccod::agent"})
# FreeSWITCH DTMF durations are in 8 kHz samples whatever the codec.
_DTMF_SAMPLES_PER_MS = 8


class Normalizer:
    """Per-node translation state: legs -> calls -> tenants, agents -> tenants, last agent status/state."""

    def __init__(
        self,
        node: str | None = None,
        *,
        system_tenant: str = "system",
        agent_tenants: Mapping[str, str] | None = None,
        domain_tenants: Mapping[str, str] | None = None,
        domain_is_tenant: bool = False,
        ended_leg_retention: int = 20_000,
    ) -> None:
        if not is_tenant_id(system_tenant):
            raise ValueError(f"system_tenant {system_tenant!r} is not a valid tenant id")
        for tenant in [*(agent_tenants or {}).values(), *(domain_tenants or {}).values()]:
            if not is_tenant_id(tenant):
                raise ValueError(f"configured tenant {tenant!r} is not a valid tenant id")
        self.node = node
        self.system_tenant = system_tenant
        self.book = CallBook(ended_leg_retention)
        self.agents = AgentBook(agent_tenants, domain_tenants, domain_is_tenant)
        self._tenants_ok: set[str] = {system_tenant}
        self.last_seen: tuple[str | None, str, int] | None = None
        """(node, Core-UUID, Event-Date-Timestamp µs) of the last mapped event: the clock of :meth:`resync`."""
        self._by_name: dict[str, Handler] = {
            "CHANNEL_CREATE": self._on_offer_point,
            "CHANNEL_ANSWER": self._on_offer_point,
            "CHANNEL_PARK": self._on_offer_point,
            "CHANNEL_BRIDGE": self._on_bridge,
            "CHANNEL_HOLD": self._on_hold,
            "CHANNEL_UNHOLD": self._on_hold,
            "DTMF": self._on_dtmf,
            "RECORD_START": self._on_record,
            "RECORD_STOP": self._on_record,
            "CHANNEL_HANGUP_COMPLETE": self._on_hangup_complete,
            "BACKGROUND_JOB": partial(node_events.background_job, self),
            "HEARTBEAT": partial(node_events.heartbeat, self),
        }
        self._custom: dict[str, Handler] = {
            "sofia::register": partial(node_events.register, self),
            "sofia::unregister": partial(node_events.unregister, self),
            "sofia::expire": partial(node_events.unregister, self),
            # Fired by our dialplan (fs-dialplan/) from the channel: only an offer point; the facts
            # themselves (queue entry, agent status) arrive as mod_callcenter events.
            "ccod::queue": self._on_channel_custom,
            "ccod::agent": self._on_channel_custom,
        }

    # ---- entry point ---------------------------------------------------------------------------

    def normalize(self, event: EslEvent) -> list[Envelope]:
        """Canonical events for one ESL event; ``[]`` when irrelevant; raises :class:`NormalizeError`."""
        h = event.headers
        get = h.get
        name = get("Event-Name")
        handler: Handler | None
        action: Action | None = None
        try:
            if name == "CUSTOM":
                subclass = get("Event-Subclass")
                if subclass == "callcenter::info":
                    action = CC_ACTIONS.get(get("CC-Action"))  # type: ignore[arg-type]
                    if action is None:  # members-count, agent-add, ...: nothing to map, nothing more to read
                        return []
                    handler = None
                else:
                    if subclass is None:  # fs-dialplan's event app: the subclass rides as ccod_subclass
                        subclass = get("ccod_subclass")
                        if subclass not in _DIALPLAN_SUBCLASSES:
                            return []
                    handler = self._custom.get(subclass)  # type: ignore[arg-type]
            else:
                handler = self._by_name.get(name)  # type: ignore[arg-type]
        except TypeError:  # a list or object where a name must be: only the dict lookups above raise it
            raise NormalizeError("bad-event-name", "Event-Name, Event-Subclass or CC-Action is not a string") from None
        if action is not None:  # run outside the try: a TypeError there is no bad event name
            builder = self._builder(h)
            action(self, h, builder)
            return builder.out
        if handler is None:
            return []
        builder = self._builder(h)
        handler(h, event, builder)
        return builder.out

    def state_snapshot(self) -> dict[str, Any]:
        """JSON-able state, so a restarted ingest resolves in-flight calls and agents as before."""
        return {
            "version": 1,
            "calls": self.book.snapshot(),
            "agents": self.agents.snapshot(),
            "last_seen": list(self.last_seen) if self.last_seen else None,
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        if snapshot.get("version") != 1:
            raise ValueError("unknown normalizer snapshot version")
        self.book.restore(snapshot["calls"])
        self.agents.restore(snapshot["agents"])
        last = snapshot.get("last_seen")
        self.last_seen = (last[0], last[1], last[2]) if last else None

    def resync(self, listing: str | bytes) -> list[Envelope]:
        """After an ESL reconnect: close the legs FreeSWITCH no longer has (``show channels as json``)."""
        return resync_channels(self, listing)

    def resync_agents(self, agent_list: str) -> list[Envelope]:
        """On (re)connect, from ``api callcenter_config agent list``: learn every agent's tenant from
        its contact string and catch up on status/state changes missed while disconnected."""
        return resync_agents(self, agent_list)

    # ---- shared helpers (also used by cc_actions) ----------------------------------------------

    def _builder(self, h: Headers) -> EventBuilder:
        get = h.get
        core = get("Core-UUID")
        if not core or type(core) is not str:
            if odd_value(core):
                raise bad_header("Core-UUID", core)
            raise NormalizeError("missing-core-uuid", "event without Core-UUID")
        seq = get("Event-Sequence")
        if not seq or type(seq) is not str or not seq.isdigit() or not seq.isascii() or len(seq) > 18:
            if odd_value(seq):
                raise bad_header("Event-Sequence", seq)
            raise NormalizeError("bad-event-sequence", f"Event-Sequence {str(seq)[:40]!r}")
        ts = get("Event-Date-Timestamp")
        # epoch_us() inlined (one call per ESL event saved): digits only, within its sane bounds.
        if (not ts or type(ts) is not str or not ts.isascii() or not ts.isdigit() or len(ts) > 18
                or not MIN_US <= (ts_us := int(ts)) <= MAX_US):
            if odd_value(ts):
                raise bad_header("Event-Date-Timestamp", ts)
            raise NormalizeError("bad-timestamp", f"Event-Date-Timestamp {str(ts)[:40]!r}")
        node = self.node or text(h, "FreeSWITCH-Switchname") or text(h, "FreeSWITCH-Hostname")
        self.last_seen = (node, core, ts_us)
        return EventBuilder(node, core, int(seq), ts_us)

    def tenant_value(self, value: object) -> str:
        """A tenant id from the switch, checked against the contract's rule (cached)."""
        if type(value) is not str:
            raise NormalizeError("invalid-tenant", f"tenant id {str(value)[:80]!r}")
        if value in self._tenants_ok:
            return value
        if is_tenant_id(value):
            self._tenants_ok.add(value)
            return value
        raise NormalizeError("invalid-tenant", f"tenant id {str(value)[:80]!r}")

    def leg(self, h: Headers, b: EventBuilder, offer: bool = True) -> Leg:
        """The leg this channel event is about (created on first sight); may emit call.offered."""
        uuid = h.get("Unique-ID")
        if not uuid or type(uuid) is not str:
            if odd_value(uuid):
                raise bad_header("Unique-ID", uuid)
            raise NormalizeError("missing-unique-id", f"{h.get('Event-Name')} without Unique-ID")
        raw_tenant = checked(h, "variable_ccod_tenant")
        tenant = self.tenant_value(raw_tenant) if raw_tenant else None
        leg = self.book.legs.get(uuid)
        if leg is None:
            leg = self.book.legs[uuid] = self._new_leg(uuid, h)
            leg.created_us = epoch_us(h.get("Caller-Channel-Created-Time"))
        if tenant is not None:
            if leg.tenant is None:
                leg.tenant = tenant
            if leg.role == AGENT:
                agent = checked(h, "variable_cc_agent")
                if agent and type(agent) is str:
                    self.agents.learn_leg(agent, tenant)
        if leg.role == CALLER and not leg.offered and checked(h, "variable_ccod_agent"):
            leg.direction = "internal"  # an agent's own phone (directory variable ccod_agent), e.g. feature codes
        if offer and not leg.offered and leg.tenant is not None and (leg.role == CALLER or leg.role == OUTBOUND):
            leg.offered = True
            self.book.open_call(leg.call_id, leg.tenant)
            self._offered(h, b, leg)
        return leg

    def _new_leg(self, uuid: str, h: Headers) -> Leg:
        # Only tested or compared, but still through checked(): a number or an object there is a
        # broken producer (bad-header), not a header to read as absent.
        direction = "inbound" if checked(h, "Call-Direction") == "inbound" else "outbound"
        member = checked(h, "variable_cc_member_session_uuid")
        if member and type(member) is str and member != uuid:
            return Leg(uuid, member, AGENT, direction, agent=text(h, "variable_cc_agent"))
        linked = checked(h, "variable_ccod_call_id")  # set by our actuator on legs it originates for a call
        if linked and type(linked) is str and linked != uuid:
            role = AGENT if checked(h, "variable_ccod_agent") else OTHER
            return Leg(uuid, linked, role, direction, agent=text(h, "variable_cc_agent"))
        if direction == "inbound":
            return Leg(uuid, uuid, CALLER, direction)
        origin = checked(h, "variable_originating_leg_uuid") or (
            checked(h, "Other-Leg-Unique-ID") if checked(h, "Other-Type") == "originator" else None
        )
        if origin and type(origin) is str:
            known = self.book.legs.get(origin)
            return Leg(uuid, known.call_id if known else origin, OTHER, direction)
        return Leg(uuid, uuid, OUTBOUND, direction)

    def call_tenant(self, leg: Leg) -> str:
        """The tenant owning the leg's call (the caller's), else the leg's own; none -> dead letter."""
        call = self.book.calls.get(leg.call_id)
        if call is not None:
            return call.tenant
        if leg.tenant is not None:
            return leg.tenant
        raise NormalizeError("tenant-missing", f"leg {leg.uuid} of call {leg.call_id} has no ccod_tenant")

    def member_call(self, h: Headers) -> Call:
        """The call of a bare mod_callcenter event, through ``CC-Member-Session-UUID``."""
        member = h.get("CC-Member-Session-UUID")
        if not member or type(member) is not str:
            if odd_value(member):
                raise bad_header("CC-Member-Session-UUID", member)
            raise NormalizeError("missing-header", f"{h.get('CC-Action')} without CC-Member-Session-UUID")
        call = self.book.calls.get(member)
        if call is None:
            leg = self.book.legs.get(member)
            call = self.book.calls.get(leg.call_id) if leg is not None else None
        if call is None:
            raise NormalizeError("call-unknown", f"{h.get('CC-Action')} for unknown member session {member}")
        return call

    def _offered(self, h: Headers, b: EventBuilder, leg: Leg) -> None:
        payload = construct(
            CallOfferedPayload,
            {
                "direction": leg.direction,
                "caller_number": text(h, "Caller-Caller-ID-Number"),
                "caller_name": text(h, "Caller-Caller-ID-Name"),
                "destination": text(h, "Caller-Destination-Number"),
                "entry_point": text(h, "variable_ccod_entry_point"),
                "channel_name": text(h, "Channel-Name"),
            },
        )
        b.add(CallOffered, payload, leg.tenant, leg.call_id, queue_id=None)  # type: ignore[arg-type]

    # ---- channel events -------------------------------------------------------------------------

    def _on_offer_point(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        self.leg(h, b)

    def _on_channel_custom(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        if not checked(h, "Unique-ID"):
            return
        leg = self.leg(h, b)
        if checked(h, "ccod_action") == "transfer":
            self._transferred(h, leg, b)

    def _transferred(self, h: Headers, leg: Leg, b: EventBuilder) -> None:
        """fs-dialplan's transfer extension ran on a leg of the call: call.transferred."""
        target = nonempty(h, "ccod_transfer_target")
        if target is None:
            raise NormalizeError("missing-transfer-target", "ccod::queue transfer without ccod_transfer_target")
        kind = checked(h, "ccod_transfer_kind") or "blind"
        if type(kind) is not str or kind not in _TRANSFER_KINDS:
            raise NormalizeError("bad-transfer-kind", f"ccod_transfer_kind {str(kind)[:20]!r}")
        payload = construct(CallTransferredPayload, {"target": target, "kind": kind})
        call = self.book.calls.get(leg.call_id)
        agent = text(h, "variable_cc_agent") or leg.agent or (call.agent if call is not None else None)
        b.add(CallTransferred, payload, self.call_tenant(leg), leg.call_id, agent, text(h, "variable_cc_queue"))

    def _on_bridge(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        leg = self.leg(h, b)
        tenant = self.call_tenant(leg)
        other = nonempty(h, "Other-Leg-Unique-ID")
        if other is None:
            a, bb = text(h, "Bridge-A-Unique-ID"), text(h, "Bridge-B-Unique-ID")
            other = bb if a == leg.uuid else a
        other_leg = self.book.legs.get(other) if other else None
        payload = construct(
            CallBridgedPayload, {"other_leg_uuid": other, "leg_role": other_leg.role if other_leg else OTHER}
        )
        agent = text(h, "variable_cc_agent") or (other_leg.agent if other_leg else None)
        b.add(CallBridged, payload, tenant, leg.call_id, agent, text(h, "variable_cc_queue"))

    def _on_hold(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        leg = self.leg(h, b, offer=False)
        payload = construct(CallHoldPayload, {"held": h.get("Event-Name") == "CHANNEL_HOLD", "leg_uuid": leg.uuid})
        b.add(CallHold, payload, self.call_tenant(leg), leg.call_id)

    def _on_dtmf(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        leg = self.leg(h, b, offer=False)
        digit = h.get("DTMF-Digit")
        if type(digit) is not str or digit not in _DTMF_DIGITS:
            if odd_value(digit):
                raise bad_header("DTMF-Digit", digit)
            raise NormalizeError("bad-dtmf-digit", f"DTMF-Digit {str(digit)[:20]!r}")
        samples = small_int(h.get("DTMF-Duration"))
        payload = construct(
            CallDtmfPayload,
            {
                "digit": digit,
                "duration_ms": None if samples is None else samples // _DTMF_SAMPLES_PER_MS,
                "source": text(h, "DTMF-Source"),
                "leg_uuid": leg.uuid,
            },
        )
        b.add(CallDtmf, payload, self.call_tenant(leg), leg.call_id)

    def _on_record(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        leg = self.leg(h, b, offer=False)
        payload = construct(
            CallRecordingPayload,
            {
                "started": h.get("Event-Name") == "RECORD_START",
                "path": text(h, "Record-File-Path"),
                "leg_uuid": leg.uuid,
            },
        )
        b.add(CallRecording, payload, self.call_tenant(leg), leg.call_id)

    def _on_hangup_complete(self, h: Headers, event: EslEvent, b: EventBuilder) -> None:
        leg = self.leg(h, b)
        try:
            tenant = self.call_tenant(leg)
        except NormalizeError:
            self.book.end_leg(leg)  # dead-lettered, but the leg is over: do not keep it forever
            raise
        call = self.book.calls.get(leg.call_id)
        created_us = epoch_us(h.get("Caller-Channel-Created-Time")) or epoch_us(h.get("variable_start_uepoch"))
        answered_us = epoch_us(h.get("Caller-Channel-Answered-Time"))
        ended_us = epoch_us(h.get("Caller-Channel-Hangup-Time")) or b.ts_us
        payload = construct(
            CallEndedPayload,
            {
                "leg_uuid": leg.uuid,
                "leg_role": leg.role,
                "direction": leg.direction,
                "hangup_cause": text(h, "Hangup-Cause") or text(h, "variable_hangup_cause") or "UNKNOWN",
                "hangup_by": self._hangup_by(h, leg, call),
                "created_at": at_or_none(created_us),
                "answered_at": at_or_none(answered_us),
                "ended_at": at(ended_us),
                "duration_ms": span_ms(created_us, ended_us) or 0,
                "billable_ms": span_ms(answered_us, ended_us) or 0,
                "caller_number": text(h, "Caller-Caller-ID-Number"),
                "destination": text(h, "Caller-Destination-Number"),
                "read_codec": text(h, "Channel-Read-Codec-Name") or text(h, "variable_read_codec"),
                "write_codec": text(h, "Channel-Write-Codec-Name") or text(h, "variable_write_codec"),
                "codec_rate": small_int(h.get("Channel-Read-Codec-Rate")) or small_int(h.get("variable_read_rate")),
            },
        )
        b.add(CallEnded, payload, tenant, leg.call_id, text(h, "variable_cc_agent"), text(h, "variable_cc_queue"))
        self.book.end_leg(leg)

    @staticmethod
    def _hangup_by(h: Headers, leg: Leg, call: Call | None) -> str:
        """Who ended this leg: its own far end (``recv_*``), else whoever ended the call, else the switch.

        ``sip_hangup_disposition`` says which side sent BYE/CANCEL/refusal. When
        the switch ends a leg (``send_*``) because the other party hung up
        (``hangup_after_bridge``), the first leg whose far end sent BYE (or the
        caller's CANCEL) has recorded that party on the call. An agent phone
        refusing an offer (``recv_refuse``) ends only its own leg, not the call.
        """
        disposition = checked(h, "variable_sip_hangup_disposition")
        if type(disposition) is str and disposition.startswith("recv_"):
            party = "agent" if leg.role == AGENT else ("unknown" if leg.role == OTHER else "caller")
            ends_call = disposition == "recv_cancel" or (
                disposition == "recv_bye" and h.get("Caller-Channel-Answered-Time") != "0"
            )
            if ends_call and call is not None and call.hangup_by is None and party != "unknown":
                call.hangup_by = party
            return party
        if call is not None and call.hangup_by is not None:
            return call.hangup_by
        if type(disposition) is str and disposition.startswith("send_"):
            return "system"
        return "unknown"


CONSUMED_EVENTS: tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_PARK",
    "CHANNEL_BRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "DTMF",
    "RECORD_START",
    "RECORD_STOP",
    "CHANNEL_HANGUP_COMPLETE",
    "BACKGROUND_JOB",
    "HEARTBEAT",
)
"""Event names the normalizer maps (the ingest must subscribe to at least these)."""

CONSUMED_CUSTOM: tuple[str, ...] = (
    "callcenter::info",
    "sofia::register",
    "sofia::unregister",
    "sofia::expire",
    "ccod::queue",
    "ccod::agent",
)
