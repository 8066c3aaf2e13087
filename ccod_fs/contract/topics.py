"""Kafka topics: versioned names, keys and what flows on each.

A breaking change to an event is a new ``.vN`` topic, never an edit in place.
Keys decide ordering: everything about a tenant's calls and agents is keyed by
tenant so one router replica owns a tenant and per-call order holds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    carries: str
    partitions: int = 12


EVENTS = Topic(
    "ccod.events.v1",
    key="tenant_id",
    carries="call.*, agent.*, node.*, command.result: the canonical event log (ingest, actuator)",
)
ROUTING_DECISIONS = Topic(
    "ccod.routing.decisions.v1",
    key="source.node (target FreeSWITCH node)",
    carries="routing.decision: router -> the node's actuator",
)
WEBHOOK_DELIVERIES = Topic(
    "ccod.webhooks.deliveries.v1",
    key="tenant_id",
    carries="webhook.delivery: the dispatcher's delivery log",
)
DEAD_LETTERS = Topic(
    "ccod.deadletter.v1",
    key="origin (node or consumer)",
    carries="DeadLetter records: input that could not be turned into a valid event, with the reason",
    partitions=3,
)

ALL_TOPICS: tuple[Topic, ...] = (EVENTS, ROUTING_DECISIONS, WEBHOOK_DELIVERIES, DEAD_LETTERS)
