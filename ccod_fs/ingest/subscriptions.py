"""The explicit ESL subscription: what a contact center needs, never ``all``.

FreeSWITCH treats every token after ``CUSTOM`` as a subclass, so CUSTOM goes last.
"""

from __future__ import annotations

CHANNEL_EVENTS: tuple[str, ...] = (
    "CHANNEL_CREATE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HOLD",
    "CHANNEL_UNHOLD",
    "CHANNEL_PARK",
    "CHANNEL_HANGUP_COMPLETE",
    "DTMF",
    "RECORD_START",
    "RECORD_STOP",
    "BACKGROUND_JOB",
    "HEARTBEAT",
)

CUSTOM_SUBCLASSES: tuple[str, ...] = (
    "callcenter::info",
    "sofia::register",
    "sofia::unregister",
    "ccod::queue",
    "ccod::agent",
)


def subscription_tokens() -> list[str]:
    """Tokens for ``event json|plain <tokens>``."""
    return [*CHANNEL_EVENTS, "CUSTOM", *CUSTOM_SUBCLASSES]


def is_subscribed(event_name: str, subclass: str | None) -> bool:
    if event_name == "CUSTOM":
        return subclass in CUSTOM_SUBCLASSES
    return event_name in CHANNEL_EVENTS
