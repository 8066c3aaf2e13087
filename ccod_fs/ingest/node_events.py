"""Node-level ESL events: SIP registrations, background job results, heartbeats.

``sofia::register`` -> agent.registered; ``sofia::unregister`` / ``sofia::expire``
-> agent.unregistered (tenant: the directory variable ``ccod_tenant`` FreeSWITCH
copies into the event, else the SIP domain through ``domain_tenants`` /
``domain_is_tenant``). ``BACKGROUND_JOB`` -> command.result (tenant from the
originate's ``{ccod_tenant=...}``, else the system tenant; only the command
name is kept, never its arguments, which may carry credentials). ``HEARTBEAT``
-> node.heartbeat for the system tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccod_fs.contract.events import (
    AgentRegistered,
    AgentUnregistered,
    CommandResult,
    CommandResultPayload,
    NodeHeartbeat,
    NodeHeartbeatPayload,
    RegistrationPayload,
)
from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.envelopes import EventBuilder, construct
from ccod_fs.ingest.esl_values import Headers, checked, dial_vars, is_tenant_id, nonempty, small_int, text
from ccod_fs.ingest.normalize_error import NormalizeError

if TYPE_CHECKING:
    from ccod_fs.ingest.normalize import Normalizer

_MAX_RESULT_CHARS = 4096


def _registration(nz: Normalizer, h: Headers) -> tuple[str, RegistrationPayload]:
    user = nonempty(h, "username") or nonempty(h, "from-user") or nonempty(h, "user")
    if user is None:
        raise NormalizeError("missing-header", f"{h.get('Event-Subclass')} without user")
    realm = nonempty(h, "realm") or nonempty(h, "from-host") or nonempty(h, "host")
    domain = nonempty(h, "domain_name") or realm
    raw = checked(h, "ccod_tenant")  # a number, boolean or object is bad-header (not invalid-tenant, nor absent)
    if raw:
        tenant = nz.tenant_value(raw)
    else:
        found = nz.agents.domain_tenants.get(domain) if domain else None
        if found is None and domain and nz.agents.domain_is_tenant and is_tenant_id(domain):
            found = domain
        if found is None:
            raise NormalizeError(
                "registration-tenant-unresolved", f"no tenant for SIP user {user[:64]!r} in domain {domain!r}"
            )
        tenant = found
    payload = construct(
        RegistrationPayload,
        {
            "user": user,
            "realm": realm,
            "contact": text(h, "contact"),
            "expires_s": small_int(h.get("expires")),
            "network_ip": text(h, "network-ip"),
            "user_agent": text(h, "user-agent"),
        },
    )
    return tenant, payload

def register(nz: Normalizer, h: Headers, event: EslEvent, b: EventBuilder) -> None:
    tenant, payload = _registration(nz, h)
    b.add(AgentRegistered, payload, tenant)

def unregister(nz: Normalizer, h: Headers, event: EslEvent, b: EventBuilder) -> None:
    tenant, payload = _registration(nz, h)
    b.add(AgentUnregistered, payload, tenant)

def background_job(nz: Normalizer, h: Headers, event: EslEvent, b: EventBuilder) -> None:
    job = nonempty(h, "Job-UUID")
    if job is None:
        raise NormalizeError("missing-header", "BACKGROUND_JOB without Job-UUID")
    result = (event.body or "").strip()
    arg = text(h, "Job-Command-Arg")
    variables = dial_vars(arg) if arg else {}
    raw_tenant = variables.get("ccod_tenant")
    tenant = nz.tenant_value(raw_tenant) if raw_tenant else nz.system_tenant
    ok = not result.startswith(("-ERR", "-USAGE"))
    call_id = variables.get("origination_uuid")
    if ok and call_id is None and result.startswith("+OK ") and text(h, "Job-Command") == "originate":
        call_id = result[4:].strip() or None
    payload = construct(
        CommandResultPayload,
        {
            # The command name only: arguments may carry credentials (dial strings).
            "job_uuid": job,
            "command": text(h, "Job-Command"),
            "ok": ok,
            "result": result[:_MAX_RESULT_CHARS],
            "decision_id": variables.get("ccod_decision_id"),
        },
    )
    b.add(CommandResult, payload, tenant, call_id)

def heartbeat(nz: Normalizer, h: Headers, event: EslEvent, b: EventBuilder) -> None:
    payload = construct(
        NodeHeartbeatPayload,
        {
            "uptime_ms": small_int(h.get("Uptime-msec")),
            "session_count": small_int(h.get("Session-Count")),
            "version": text(h, "FreeSWITCH-Version"),
        },
    )
    b.add(NodeHeartbeat, payload, nz.system_tenant)
