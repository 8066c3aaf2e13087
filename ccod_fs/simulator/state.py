"""What a simulated node knows about itself, kept up to date from the events it sends.

``api show channels``, ``show calls`` and ``callcenter_config`` must answer from the
same truth the event stream tells, so the state is *derived from the events* (as
FreeSWITCH's own core DB is fed by channel events), never kept separately.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ccod_fs.simulator.timefmt import local_stamp

# Enough to answer show channels/calls and callcenter_config; CHANNEL_STATE/EXECUTE are left
# out because parsing them would cost more than the rest of the simulator.
TRACKED_EVENTS = frozenset({
    "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_EXECUTE", "CALL_UPDATE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CUSTOM",
})
_CHANNEL_FIELDS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr",
    "dest", "application", "application_data", "dialplan", "context", "read_codec", "read_rate",
    "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id",
    "presence_data", "accountcode", "callstate", "callee_name", "callee_num", "callee_direction",
    "call_uuid", "sent_callee_name", "sent_callee_num", "initial_cid_name", "initial_cid_num",
    "initial_ip_addr", "initial_dest", "initial_dialplan", "initial_context",
)
_CALL_FIELDS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr",
    "dest", "presence_id", "presence_data", "accountcode", "callstate", "callee_name", "callee_num",
    "callee_direction", "call_uuid", "hostname", "sent_callee_name", "sent_callee_num",
)
AGENT_FIELDS = (
    "name", "instance_id", "uuid", "type", "contact", "status", "state", "max_no_answer", "wrap_up_time",
    "reject_delay_time", "busy_delay_time", "no_answer_delay_time", "last_bridge_start", "last_bridge_end",
    "last_offered_call", "last_status_change", "no_answer_count", "calls_answered", "talk_time",
    "ready_time", "external_calls_count",
)
QUEUE_FIELDS = (
    "name", "strategy", "moh_sound", "time_base_score", "tier_rules_apply", "tier_rule_wait_second",
    "tier_rule_wait_multiply_level", "tier_rule_no_agent_no_wait", "discard_abandoned_after",
    "abandoned_resume_allowed", "max_wait_time", "max_wait_time_with_no_agent",
    "max_wait_time_with_no_agent_time_reached", "record_template", "calls_answered", "calls_abandoned",
    "ring_progressively_delay", "skip_agents_with_external_calls", "agent_no_answer_status",
)


_EVENT_SPECIFIC = ("application", "application_data", "sent_callee_name", "sent_callee_num", "call_created_epoch")


def _s(headers: dict[str, object], name: str) -> str:
    value = headers.get(name, "")
    if isinstance(value, str):
        return value
    return "|".join(str(v) for v in value) if isinstance(value, list) else str(value)


@dataclass(slots=True)
class AgentRow:
    name: str
    contact: str
    status: str = "Logged Out"
    state: str = "Waiting"
    values: dict[str, str] = field(default_factory=dict)

    def row(self) -> dict[str, str]:
        base = {k: "0" for k in AGENT_FIELDS}
        base.update(name=self.name, instance_id="single_box", uuid="", type="callback", contact=self.contact,
                    status=self.status, state=self.state, max_no_answer="3", wrap_up_time="3",
                    reject_delay_time="10", busy_delay_time="10", no_answer_delay_time="10")
        base.update(self.values)
        return base


@dataclass(slots=True)
class QueueRow:
    name: str
    max_wait_time_with_no_agent: str = "0"
    calls_answered: int = 0
    calls_abandoned: int = 0
    members: dict[str, dict[str, str]] = field(default_factory=dict)  # member uuid -> row

    def row(self) -> dict[str, str]:
        return {
            "name": self.name, "strategy": "longest-idle-agent", "moh_sound": "local_stream://moh",
            "time_base_score": "system", "tier_rules_apply": "false", "tier_rule_wait_second": "300",
            "tier_rule_wait_multiply_level": "true", "tier_rule_no_agent_no_wait": "false",
            "discard_abandoned_after": "60", "abandoned_resume_allowed": "false", "max_wait_time": "0",
            "max_wait_time_with_no_agent": self.max_wait_time_with_no_agent,
            "max_wait_time_with_no_agent_time_reached": "5", "record_template": "",
            "calls_answered": str(self.calls_answered), "calls_abandoned": str(self.calls_abandoned),
            "ring_progressively_delay": "0", "skip_agents_with_external_calls": "true",
            "agent_no_answer_status": "On Break",
        }


class SwitchState:
    """Live channels, bridges, callcenter agents/queues/members and counters of one node."""

    def __init__(self, hostname: str = "vm") -> None:
        self.hostname = hostname
        self.lock = threading.Lock()
        self.channels: dict[str, dict[str, str]] = {}
        self.bridges: dict[str, str] = {}  # a-leg uuid -> b-leg uuid
        self.agents: dict[str, AgentRow] = {}
        self.queues: dict[str, QueueRow] = {}
        self.sessions_since_start = 0
        self.peak_sessions = 0
        self.started_us = 0

    def configure(self, agents: list[tuple[str, str]], queues: list[tuple[str, str]]) -> None:
        """Declare agents ``(name, contact)`` and queues ``(name, max_wait_with_no_agent)``."""
        with self.lock:
            for name, contact in agents:
                self.agents.setdefault(name, AgentRow(name, contact))
            for name, max_wait in queues:
                self.queues.setdefault(name, QueueRow(name, max_wait))

    # -- feeding -----------------------------------------------------------------------------------

    def observe(self, headers: dict[str, object]) -> None:
        name = _s(headers, "Event-Name")
        with self.lock:
            if name == "CUSTOM":
                if _s(headers, "Event-Subclass") == "callcenter::info":
                    self._callcenter(headers)
                return
            uuid = _s(headers, "Unique-ID")
            if not uuid:
                return
            if name == "CHANNEL_CREATE":
                self.sessions_since_start += 1
                row = self._channel_row(headers)
                row.update(application="", application_data="", sent_callee_name="", sent_callee_num="")
                for key in ("cid_name", "cid_num", "ip_addr", "dest", "dialplan", "context"):
                    row["initial_" + key] = row[key]
                self.channels[uuid] = row
                self.peak_sessions = max(self.peak_sessions, len(self.channels))
            elif name == "CHANNEL_DESTROY":
                self.channels.pop(uuid, None)
                self.bridges.pop(uuid, None)
            elif uuid in self.channels:
                row = self.channels[uuid]
                initial = {k: v for k, v in row.items() if k.startswith("initial_")}
                kept = {k: row[k] for k in _EVENT_SPECIFIC if k in row}
                row.update(self._channel_row(headers))
                row.update(initial)
                row.update(kept)
                if name == "CALL_UPDATE":  # what this leg last sent as callee id
                    row.update(sent_callee_name=_s(headers, "Sent-Callee-ID-Name"),
                               sent_callee_num=_s(headers, "Sent-Callee-ID-Number"))
                elif name == "CHANNEL_EXECUTE":  # the core DB's application columns follow executions
                    row.update(application=_s(headers, "Application"),
                               application_data=_s(headers, "Application-Data"))
                elif name == "CHANNEL_BRIDGE":
                    self.bridges[_s(headers, "Bridge-A-Unique-ID")] = _s(headers, "Bridge-B-Unique-ID")
                    stamp = _s(headers, "Event-Date-Timestamp")
                    row["call_created_epoch"] = str(int(stamp) // 1_000_000) if stamp.isdigit() else ""
                elif name == "CHANNEL_UNBRIDGE":
                    self.bridges.pop(_s(headers, "Bridge-A-Unique-ID"), None)

    def _channel_row(self, h: dict[str, object]) -> dict[str, str]:
        created = _s(h, "Caller-Channel-Created-Time")
        created_s = int(created) // 1_000_000 if created.isdigit() else 0
        callee = _s(h, "Caller-Callee-ID-Number")
        return {
            "uuid": _s(h, "Unique-ID"), "direction": _s(h, "Call-Direction"),
            "created": local_stamp(created_s), "created_epoch": str(created_s), "name": _s(h, "Channel-Name"),
            "state": _s(h, "Channel-State"), "cid_name": _s(h, "Caller-Caller-ID-Name"),
            "cid_num": _s(h, "Caller-Caller-ID-Number"),
            "ip_addr": _s(h, "Caller-Network-Addr") if _s(h, "Call-Direction") == "inbound" else "",
            "dest": _s(h, "Caller-Destination-Number"),
            "dialplan": _s(h, "Caller-Dialplan"), "context": _s(h, "Caller-Context"),
            "read_codec": _s(h, "Channel-Read-Codec-Name"), "read_rate": _s(h, "Channel-Read-Codec-Rate"),
            "read_bit_rate": _s(h, "Channel-Read-Codec-Bit-Rate"),
            "write_codec": _s(h, "Channel-Write-Codec-Name"), "write_rate": _s(h, "Channel-Write-Codec-Rate"),
            "write_bit_rate": _s(h, "Channel-Write-Codec-Bit-Rate"), "secure": "",
            "hostname": _s(h, "FreeSWITCH-Hostname"), "presence_id": _s(h, "Channel-Presence-ID"),
            "presence_data": "", "accountcode": _s(h, "variable_accountcode"),
            "callstate": _s(h, "Channel-Call-State"), "callee_name": _s(h, "Caller-Callee-ID-Name"),
            "callee_num": callee, "callee_direction": "SEND" if callee else "",
            "call_uuid": _s(h, "Channel-Call-UUID"),
        }

    def _callcenter(self, h: dict[str, object]) -> None:
        action = _s(h, "CC-Action")
        agent = self.agents.get(_s(h, "CC-Agent"))
        queue = self.queues.get(_s(h, "CC-Queue"))
        now = _s(h, "Event-Date-Timestamp")
        now_s = str(int(now) // 1_000_000) if now.isdigit() else "0"
        if action == "agent-status-change" and agent:
            agent.status = _s(h, "CC-Agent-Status")
            agent.values["last_status_change"] = now_s
        elif action == "agent-state-change" and agent:
            agent.state = _s(h, "CC-Agent-State")
        elif action == "agent-offering" and agent:
            agent.values["last_offered_call"] = now_s
        elif action == "bridge-agent-start" and agent:
            agent.values["uuid"] = _s(h, "CC-Agent-UUID")
            agent.values["last_bridge_start"] = now_s
            agent.values["calls_answered"] = str(int(agent.values.get("calls_answered", "0")) + 1)
            if queue:
                queue.calls_answered += 1
        elif action == "bridge-agent-end" and agent:
            agent.values["last_bridge_end"] = now_s
            agent.values["uuid"] = ""
        elif action == "bridge-agent-fail" and agent and _s(h, "CC-Hangup-Cause") == "NO_ANSWER":
            agent.values["no_answer_count"] = str(int(agent.values.get("no_answer_count", "0")) + 1)
        elif action == "member-queue-start" and queue:
            joined = _s(h, "CC-Member-Joined-Time") or now_s
            queue.members[_s(h, "CC-Member-UUID")] = {
                "queue": queue.name, "instance_id": "single_box", "uuid": _s(h, "CC-Member-UUID"),
                "session_uuid": _s(h, "CC-Member-Session-UUID") or _s(h, "Unique-ID"),
                "cid_number": _s(h, "CC-Member-CID-Number"), "cid_name": _s(h, "CC-Member-CID-Name"),
                "system_epoch": joined, "joined_epoch": joined, "rejoined_epoch": "0", "bridge_epoch": "0",
                "abandoned_epoch": "0", "base_score": "0", "skill_score": "0", "serving_agent": "",
                "serving_system": "", "state": "Waiting", "score": "0",
            }
        elif action == "member-queue-end" and queue:
            queue.members.pop(_s(h, "CC-Member-UUID"), None)
            if _s(h, "CC-Cause") == "Cancel":
                queue.calls_abandoned += 1
        if action == "bridge-agent-start" and queue:
            member = queue.members.get(_s(h, "CC-Member-UUID"))
            if member:
                member.update(bridge_epoch=now_s, serving_agent=_s(h, "CC-Agent"),
                              serving_system="single_box", state="Answered")

    # -- reading (callers hold no lock; rows are copied) ----------------------------------------------

    def channel_rows(self) -> list[dict[str, str]]:
        with self.lock:
            return [{k: row.get(k, "") for k in _CHANNEL_FIELDS} for row in self.channels.values()]

    def call_rows(self) -> list[dict[str, str]]:
        with self.lock:
            b_legs = set(self.bridges.values())
            rows = []
            for uuid, row in self.channels.items():
                if uuid in b_legs:
                    continue
                out = {k: row.get(k, "") for k in _CALL_FIELDS}
                other = self.channels.get(self.bridges.get(uuid, ""), {})
                for k in _CALL_FIELDS:
                    if k not in ("call_uuid", "hostname"):
                        out["b_" + k] = other.get(k, "")
                out["call_created_epoch"] = row.get("call_created_epoch") or row.get("created_epoch", "")
                rows.append(out)
            return rows
