"""Typed event catalogue (schema version 1).

Every concrete event is an :class:`Envelope` with a literal ``type`` and a typed
``payload``. The catalogue covers the whole system from the start: calls and
queues (ingest), agents, routing decisions and their results (router/actuator),
webhook deliveries (dispatcher) and dead letters. A breaking change is a new
topic version, never an edit in place; adding an optional field is compatible.
"""

from __future__ import annotations

from datetime import datetime
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from ccod_fs.contract.envelope import Envelope, Source, UtcMs


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Direction = Literal["inbound", "outbound", "internal"]
LegRole = Literal["caller", "agent", "outbound", "other"]


# ---- call lifecycle -----------------------------------------------------------------------------


class CallOfferedPayload(Payload):
    """A call reached a tenant entry point (first event carrying the tenant)."""

    direction: Direction = "inbound"
    caller_number: str | None = None
    caller_name: str | None = None
    destination: str | None = Field(default=None, description="dialled number (DNIS)")
    entry_point: str | None = None
    channel_name: str | None = None


class CallQueuedPayload(Payload):
    queue: str
    member_uuid: str | None = None
    caller_number: str | None = None
    caller_name: str | None = None
    joined_at: UtcMs | None = None
    resumed: bool = Field(default=False, description="re-entered after an abandon (member-queue-resume)")


class CallAgentOfferedPayload(Payload):
    """The queue rang an agent for this call."""

    queue: str
    agent: str
    member_uuid: str | None = None


class CallAgentFailedPayload(Payload):
    """An offer to an agent failed (no answer, busy, caller cancelled...)."""

    queue: str
    agent: str
    hangup_cause: str
    called_at: UtcMs | None = None
    aborted_at: UtcMs | None = None
    ring_ms: int | None = Field(default=None, ge=0)


class CallAnsweredPayload(Payload):
    """An agent answered and was bridged to the caller (queue answer)."""

    queue: str
    agent: str
    agent_leg_uuid: str | None = None
    joined_at: UtcMs | None = None
    called_at: UtcMs | None = None
    answered_at: UtcMs
    wait_ms: int | None = Field(default=None, ge=0, description="answered_at - joined_at")
    ring_ms: int | None = Field(default=None, ge=0, description="answered_at - called_at")


class CallAgentEndedPayload(Payload):
    """The agent's bridge ended (bridge-agent-end): talk time is final here."""

    queue: str
    agent: str
    hangup_cause: str | None = None
    answered_at: UtcMs | None = None
    ended_at: UtcMs
    talk_ms: int | None = Field(default=None, ge=0)


class CallDequeuedPayload(Payload):
    """The caller left the queue: answered (terminated) or not (cancel + reason)."""

    queue: str
    outcome: Literal["answered", "abandoned", "timeout", "no_agent_timeout", "exit_with_key", "other"]
    cancel_reason: str | None = None
    joined_at: UtcMs | None = None
    left_at: UtcMs
    wait_ms: int | None = Field(default=None, ge=0)
    agent: str | None = None


class CallBridgedPayload(Payload):
    other_leg_uuid: str | None = None
    leg_role: LegRole = "other"


class CallHoldPayload(Payload):
    held: bool
    leg_uuid: str | None = None


class CallTransferredPayload(Payload):
    target: str
    kind: Literal["blind", "attended", "queue"] = "blind"


class CallDtmfPayload(Payload):
    digit: str = Field(min_length=1, max_length=1)
    duration_ms: int | None = Field(default=None, ge=0)
    source: str | None = None
    leg_uuid: str | None = None


class CallRecordingPayload(Payload):
    started: bool
    path: str | None = None
    leg_uuid: str | None = None


class CallEndedPayload(Payload):
    """A leg hung up (CHANNEL_HANGUP_COMPLETE); the caller leg's end ends the call."""

    leg_uuid: str
    leg_role: LegRole
    direction: Direction
    hangup_cause: str
    hangup_by: Literal["caller", "agent", "system", "unknown"] = "unknown"
    created_at: UtcMs | None = None
    answered_at: UtcMs | None = None
    ended_at: UtcMs
    duration_ms: int = Field(ge=0, description="ended_at - created_at")
    billable_ms: int = Field(default=0, ge=0, description="ended_at - answered_at, 0 when never answered")
    caller_number: str | None = None
    destination: str | None = None
    read_codec: str | None = None
    write_codec: str | None = None
    codec_rate: int | None = None


# ---- agents, registrations ------------------------------------------------------------------------


class AgentStatusPayload(Payload):
    """Agent status (Logged Out, Available, Available (On Demand), On Break)."""

    status: str
    previous: str | None = None


class AgentStatePayload(Payload):
    """Agent state (Waiting, Receiving, In a queue call, Idle, Reserved)."""

    state: str
    previous: str | None = None


class RegistrationPayload(Payload):
    user: str
    realm: str | None = None
    contact: str | None = None
    expires_s: int | None = None
    network_ip: str | None = None
    user_agent: str | None = None


# ---- node / commands --------------------------------------------------------------------------------


class NodeHeartbeatPayload(Payload):
    uptime_ms: int | None = None
    session_count: int | None = None
    version: str | None = None


class CommandResultPayload(Payload):
    """Result of an api/bgapi command (BACKGROUND_JOB), e.g. an originate."""

    job_uuid: str
    command: str | None = None
    ok: bool
    result: str
    decision_id: str | None = Field(default=None, description="routing decision this executes, if any")


# ---- routing ----------------------------------------------------------------------------------------


class RoutingDecisionPayload(Payload):
    """What the router wants the node's actuator to do."""

    action: Literal["offer", "bridge", "transfer", "hangup", "cancel_offer"]
    target_node: str
    queue: str | None = None
    agent: str | None = None
    agent_contact: str | None = None
    reason: str | None = None
    decided_by_offset: int | None = Field(default=None, description="input offset that led to this decision")


# ---- webhooks ---------------------------------------------------------------------------------------


class WebhookDeliveryPayload(Payload):
    subscription_id: str
    delivered_event_id: str
    url: str
    attempt: int = Field(ge=1)
    status: Literal["delivered", "retrying", "dead"]
    http_status: int | None = None
    error: str | None = None
    latency_ms: int | None = None


# ---- concrete events --------------------------------------------------------------------------------


class CallOffered(Envelope):
    type: Literal["call.offered"] = "call.offered"
    payload: CallOfferedPayload


class CallQueued(Envelope):
    type: Literal["call.queued"] = "call.queued"
    payload: CallQueuedPayload


class CallAgentOffered(Envelope):
    type: Literal["call.agent_offered"] = "call.agent_offered"
    payload: CallAgentOfferedPayload


class CallAgentFailed(Envelope):
    type: Literal["call.agent_failed"] = "call.agent_failed"
    payload: CallAgentFailedPayload


class CallAnswered(Envelope):
    type: Literal["call.answered"] = "call.answered"
    payload: CallAnsweredPayload


class CallAgentEnded(Envelope):
    type: Literal["call.agent_ended"] = "call.agent_ended"
    payload: CallAgentEndedPayload


class CallDequeued(Envelope):
    type: Literal["call.dequeued"] = "call.dequeued"
    payload: CallDequeuedPayload


class CallBridged(Envelope):
    type: Literal["call.bridged"] = "call.bridged"
    payload: CallBridgedPayload


class CallHold(Envelope):
    type: Literal["call.hold"] = "call.hold"
    payload: CallHoldPayload


class CallTransferred(Envelope):
    type: Literal["call.transferred"] = "call.transferred"
    payload: CallTransferredPayload


class CallDtmf(Envelope):
    type: Literal["call.dtmf"] = "call.dtmf"
    payload: CallDtmfPayload


class CallRecording(Envelope):
    type: Literal["call.recording"] = "call.recording"
    payload: CallRecordingPayload


class CallEnded(Envelope):
    type: Literal["call.ended"] = "call.ended"
    payload: CallEndedPayload


class AgentStatusChanged(Envelope):
    type: Literal["agent.status_changed"] = "agent.status_changed"
    payload: AgentStatusPayload


class AgentStateChanged(Envelope):
    type: Literal["agent.state_changed"] = "agent.state_changed"
    payload: AgentStatePayload


class AgentRegistered(Envelope):
    type: Literal["agent.registered"] = "agent.registered"
    payload: RegistrationPayload


class AgentUnregistered(Envelope):
    type: Literal["agent.unregistered"] = "agent.unregistered"
    payload: RegistrationPayload


class NodeHeartbeat(Envelope):
    type: Literal["node.heartbeat"] = "node.heartbeat"
    payload: NodeHeartbeatPayload


class CommandResult(Envelope):
    type: Literal["command.result"] = "command.result"
    payload: CommandResultPayload


class RoutingDecision(Envelope):
    type: Literal["routing.decision"] = "routing.decision"
    payload: RoutingDecisionPayload


class WebhookDelivery(Envelope):
    type: Literal["webhook.delivery"] = "webhook.delivery"
    payload: WebhookDeliveryPayload


EVENT_CLASSES: tuple[type[Envelope], ...] = (
    CallOffered,
    CallQueued,
    CallAgentOffered,
    CallAgentFailed,
    CallAnswered,
    CallAgentEnded,
    CallDequeued,
    CallBridged,
    CallHold,
    CallTransferred,
    CallDtmf,
    CallRecording,
    CallEnded,
    AgentStatusChanged,
    AgentStateChanged,
    AgentRegistered,
    AgentUnregistered,
    NodeHeartbeat,
    CommandResult,
    RoutingDecision,
    WebhookDelivery,
)

EVENT_TYPES: dict[str, type[Envelope]] = {
    cls.model_fields["type"].default: cls for cls in EVENT_CLASSES
}

CanonicalEvent = Annotated[
    CallOffered
    | CallQueued
    | CallAgentOffered
    | CallAgentFailed
    | CallAnswered
    | CallAgentEnded
    | CallDequeued
    | CallBridged
    | CallHold
    | CallTransferred
    | CallDtmf
    | CallRecording
    | CallEnded
    | AgentStatusChanged
    | AgentStateChanged
    | AgentRegistered
    | AgentUnregistered
    | NodeHeartbeat
    | CommandResult
    | RoutingDecision
    | WebhookDelivery,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(CanonicalEvent)


def parse_event(data: bytes | str) -> Envelope:
    """Validate a serialized event (JSON) into its concrete model; raises ``pydantic.ValidationError``."""
    event: Envelope = EVENT_ADAPTER.validate_json(data)
    return event


def _plain_fields(cls: type[BaseModel]) -> bool:
    """Whether every field of ``cls`` holds only values orjson writes exactly as pydantic does."""
    if cls.model_config.get("extra") != "forbid" or cls.__pydantic_computed_fields__:
        return False
    for field in cls.model_fields.values():
        if field.exclude or field.alias or field.serialization_alias or not _plain_type(field.annotation):
            return False
    decorators = cls.__pydantic_decorators__
    return not (decorators.field_serializers or decorators.model_serializers)


def _plain_type(tp: Any) -> bool:
    if tp in (str, int, bool, type(None), datetime, UUID):
        return True
    origin = get_origin(tp)
    if origin is Literal:
        return all(type(arg) in (str, bool) or arg is None for arg in get_args(tp))
    if origin is Annotated:
        return _plain_type(get_args(tp)[0])
    if origin in (Union, UnionType):
        return all(_plain_type(arg) for arg in get_args(tp))
    return isinstance(tp, type) and issubclass(tp, BaseModel) and _plain_fields(tp)


# Events whose fields are str/int/bool/None/datetimes/UUIDs/nested such models: orjson writes
# them byte for byte as pydantic's ``to_json`` does (a test pins it), at a fraction of the cost.
_ORJSON_EVENTS: frozenset[type[Envelope]] = frozenset(cls for cls in EVENT_CLASSES if _plain_fields(cls))


def _payload_class(cls: type[Envelope]) -> object:
    field = cls.model_fields["payload"]
    return field.annotation


_ORJSON_PAYLOADS: frozenset[object] = frozenset(_payload_class(cls) for cls in _ORJSON_EVENTS)


def serialize_event(event: Envelope) -> bytes:
    """The wire form on Kafka: compact JSON, ``occurred_at`` as ISO-8601 with milliseconds.

    The same bytes as pydantic's ``to_json``: orjson on the model's fields for the plain event
    classes (the ingest's hot path), pydantic for anything orjson would not write identically.
    """
    if type(event) in _ORJSON_EVENTS:
        fields = event.__dict__
        source, payload = fields["source"], fields["payload"]
        if type(source) is Source and type(payload) in _ORJSON_PAYLOADS:
            flat = fields.copy()
            flat["source"] = source.__dict__
            flat["payload"] = payload.__dict__
            try:
                return orjson.dumps(flat, option=orjson.OPT_UTC_Z)
            except TypeError:  # e.g. an int beyond 64 bits: pydantic writes it
                pass
    return event.__pydantic_serializer__.to_json(event)


def occurred_ms(value: datetime) -> int:
    """Epoch milliseconds of a contract timestamp."""
    return round(value.timestamp() * 1000)
