"""After an ESL reconnect: align the normalizer with FreeSWITCH's own view (channels, agents).

Events fired while the ingest was disconnected are gone (ESL has no replay).
A leg we saw alive that ``show channels as json`` no longer lists must have
hung up meanwhile: without a ``call.ended`` it would stay live forever on
wallboards and in reports. So we emit one for it, marked for what it is:
``hangup_cause`` ``UNKNOWN``, ``hangup_by`` ``unknown``, ``ended_at`` the time
of the last event seen before the outage (the earliest it can have ended is
later, the latest we know nothing about). Its id is a UUIDv5 of the Core-UUID
and the leg, so a second resync never duplicates it. Channels FreeSWITCH has
and we do not know carry no tenant in the listing and are left alone: their
next event attributes them. Legs of a previous Core-UUID (switch restarted)
are all gone by definition.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import orjson

from ccod_fs.contract.envelope import EVENT_ID_NAMESPACE, SCHEMA_VERSION, Envelope, Source, datetime_from_us
from ccod_fs.contract.events import (
    AgentStateChanged,
    AgentStatePayload,
    AgentStatusChanged,
    AgentStatusPayload,
    CallEnded,
    CallEndedPayload,
)
from ccod_fs.ingest.envelopes import SERVICE, at, construct
from ccod_fs.ingest.normalize_error import NormalizeError

if TYPE_CHECKING:
    from ccod_fs.ingest.normalize import Normalizer


def live_channel_uuids(listing: str | bytes) -> set[str]:
    """UUIDs in a ``show channels as json`` reply (``{"row_count": 0}`` when idle)."""
    try:
        data = orjson.loads(listing)
    except orjson.JSONDecodeError as exc:
        raise NormalizeError("bad-channel-listing", f"show channels as json: {exc}") from None
    if not isinstance(data, dict):
        raise NormalizeError("bad-channel-listing", "show channels as json: not an object")
    rows = data.get("rows") or []
    if not isinstance(rows, list):
        raise NormalizeError("bad-channel-listing", "show channels as json: rows is not a list")
    return {row["uuid"] for row in rows if isinstance(row, dict) and isinstance(row.get("uuid"), str)}


def resync_channels(nz: Normalizer, listing: str | bytes) -> list[Envelope]:
    """``call.ended`` for every live leg we know that FreeSWITCH no longer lists; the book forgets them."""
    live = live_channel_uuids(listing)
    if nz.last_seen is None:
        return []
    node, core_uuid, last_us = nz.last_seen
    source = construct(Source, {"service": SERVICE, "node": node, "core_uuid": core_uuid, "event_sequence": None})
    ended_at = datetime_from_us(last_us)
    out: list[Envelope] = []
    for leg in list(nz.book.legs.values()):
        if leg.ended or leg.uuid in live:
            continue
        nz.book.end_leg(leg)
        call = nz.book.calls.get(leg.call_id)
        tenant = call.tenant if call is not None else leg.tenant
        if tenant is None:
            continue  # never attributable: nothing was published about it either
        created_us = leg.created_us if leg.created_us is not None and leg.created_us <= last_us else None
        payload = construct(
            CallEndedPayload,
            {
                "leg_uuid": leg.uuid,
                "leg_role": leg.role,
                "direction": leg.direction,
                "hangup_cause": "UNKNOWN",
                "hangup_by": "unknown",
                "created_at": None if created_us is None else datetime_from_us(created_us),
                "ended_at": ended_at,
                "duration_ms": 0 if created_us is None else last_us // 1000 - created_us // 1000,
            },
        )
        out.append(
            construct(
                CallEnded,
                {
                    "event_id": uuid.uuid5(EVENT_ID_NAMESPACE, f"{core_uuid}:resync:{leg.uuid}"),
                    "type": "call.ended",
                    "schema_version": SCHEMA_VERSION,
                    "tenant_id": tenant,
                    "occurred_at": ended_at,
                    "source": source,
                    "call_id": leg.call_id,
                    "agent_id": leg.agent,
                    "payload": payload,
                },
            )
        )
    return out


def parse_agent_list(listing: str) -> list[dict[str, str]]:
    """Rows of ``callcenter_config agent list`` (a ``|`` table with a header line, ending in ``+OK``)."""
    lines = [line for line in listing.replace("\r", "").split("\n") if line and line != "+OK"]
    if not lines or not lines[0].startswith("name|"):
        raise NormalizeError("bad-agent-listing", f"callcenter_config agent list: {listing[:80]!r}")
    header = lines[0].split("|")
    return [dict(zip(header, line.split("|"), strict=False)) for line in lines[1:] if line.count("|") >= 5]


def resync_agents(nz: Normalizer, listing: str) -> list[Envelope]:
    """Learn every agent's tenant from its contact string; emit the status/state changes we missed.

    Run on (re)connect with ``api callcenter_config agent list``. Agents we knew
    whose status or state differs got ``agent.*_changed`` events while we were
    away; one catch-up event each is emitted (occurred at the last event seen,
    id derived from the transition so a repeat resync does not duplicate it).
    Agents we did not know are only remembered: nothing is known about when.
    """
    out: list[Envelope] = []
    seen = nz.last_seen
    for row in parse_agent_list(listing):
        name, contact = row.get("name"), row.get("contact")
        if not name:
            continue
        if contact:
            nz.agents.learn_contact(name, contact)
        tenant = nz.agents.tenant_of(name)
        for kind, memory, cls, payload_cls in (
            ("status", nz.agents.status, AgentStatusChanged, AgentStatusPayload),
            ("state", nz.agents.state, AgentStateChanged, AgentStatePayload),
        ):
            value = row.get(kind)
            if not value:
                continue
            previous = memory.get(name)
            memory[name] = value
            if previous is None or previous == value or seen is None or tenant is None:
                continue
            node, core_uuid, last_us = seen
            when = at(last_us)
            out.append(
                construct(
                    cls,
                    {
                        "event_id": uuid.uuid5(
                            EVENT_ID_NAMESPACE, f"{core_uuid}:resync:{last_us}:{name}:{kind}:{previous}:{value}"
                        ),
                        "type": cls.model_fields["type"].default,
                        "tenant_id": tenant,
                        "occurred_at": when,
                        "source": construct(
                            Source, {"service": SERVICE, "node": node, "core_uuid": core_uuid, "event_sequence": None}
                        ),
                        "agent_id": name,
                        "payload": construct(payload_cls, {kind: value, "previous": previous}),
                    },
                )
            )
    return out
