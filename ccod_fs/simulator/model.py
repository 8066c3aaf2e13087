"""Plain data types shared by the simulator's renderer, scenarios and server."""

from __future__ import annotations

from dataclasses import dataclass, field

HeaderValue = str | list[str]


@dataclass(slots=True)
class FsEvent:
    """One FreeSWITCH event as the switch builds it: ordered headers (duplicates allowed) + body."""

    headers: list[tuple[str, HeaderValue]]
    body: str | None = None

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value if isinstance(value, str) else "|".join(value)
        return default

    @property
    def name(self) -> str:
        return self.get("Event-Name")

    @property
    def subclass(self) -> str:
        return self.get("Event-Subclass")


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """What identifies one simulated FreeSWITCH node in every event it sends."""

    core_uuid: str
    hostname: str = "vm"
    ipv4: str = "192.0.2.2"
    ipv6: str = "fd00::2"


@dataclass(slots=True)
class CallTruth:
    """Ground truth for one simulated inbound queue call (times in µs since the epoch)."""

    node: str
    tenant: str
    queue: str
    caller_uuid: str
    caller_number: str
    outcome: str  # answered | abandoned_waiting | abandoned_ringing | timeout
    joined_us: int
    ended_us: int
    agent: str | None = None
    answered_us: int | None = None
    failed_offers: list[str] = field(default_factory=list)  # hangup causes of failed agent offers
    holds: int = 0
    dtmf: int = 0
    transferred_to: str | None = None  # blind transfer target (ccod-fs transfer extension)

    @property
    def wait_us(self) -> int:
        return (self.answered_us if self.answered_us is not None else self.ended_us) - self.joined_us

    @property
    def talk_us(self) -> int:
        return 0 if self.answered_us is None else self.ended_us - self.answered_us
