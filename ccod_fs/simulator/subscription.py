"""``event <format> <names...>``: which events a listener gets, as mod_event_socket decides.

Names after ``CUSTOM`` are subclasses; ``CUSTOM`` alone only gets custom events without a
subclass (as in mod_event_socket). ``ALL`` turns on every event and every subclass.
Unknown names are ignored; a command that names nothing valid gets ``-ERR no keywords
supplied``. Repeated ``event`` commands add to the subscription.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EVENT_NAMES = frozenset({
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN",
    "OUTBOUND_CHAN", "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT",
    "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB",
    "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE",
    "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA",
    "GENERAL", "COMMAND", "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO",
    "RECV_INFO", "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START",
    "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA",
    "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ",
    "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
})
FORMATS = ("plain", "json", "xml")


@dataclass(slots=True)
class Subscription:
    fmt: str = ""
    all_events: bool = False
    names: set[str] = field(default_factory=set)
    subclasses: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return bool(self.fmt) and (self.all_events or bool(self.names))

    def add(self, words: list[str]) -> bool:
        """Apply ``event`` arguments (after the format); False when nothing valid was named."""
        keys = 0
        custom = False
        for word in words:
            if custom and word not in EVENT_NAMES:
                self.subclasses.add(word)
                continue
            if word not in EVENT_NAMES:
                continue
            keys += 1
            if word == "ALL":
                self.all_events = True
            else:
                self.names.add(word)
            if word in ("CUSTOM", "ALL"):
                custom = True
        return keys > 0

    def remove(self, words: list[str]) -> None:
        for word in words:
            self.names.discard(word)
            self.subclasses.discard(word)
            if word == "ALL":
                self.all_events = False
                self.names.clear()
                self.subclasses.clear()

    def wants(self, name: str, subclass: str) -> bool:
        if self.all_events:
            return True
        if name not in self.names:
            return False
        return name != "CUSTOM" or not subclass or subclass in self.subclasses
