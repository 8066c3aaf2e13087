"""Node-level events the server fires in reply to commands (API, BACKGROUND_JOB, agent status).

Their header blocks copy the captures field for field (calling file, function and line
included); they are built directly rather than from templates because they carry the
client's command text.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from ccod_fs.simulator.encoding import url_encode
from ccod_fs.simulator.model import FsEvent, HeaderValue, NodeIdentity
from ccod_fs.simulator.render import plain_value
from ccod_fs.simulator.timefmt import gmt_stamp, local_stamp


def base_headers(
    name: str, node: NodeIdentity, ts_us: int, seq: int, where: tuple[str, str, str], subclass: str = ""
) -> list[tuple[str, HeaderValue]]:
    headers: list[tuple[str, HeaderValue]] = [("Event-Subclass", subclass)] if subclass else []
    headers += [
        ("Event-Name", name), ("Core-UUID", node.core_uuid), ("FreeSWITCH-Hostname", node.hostname),
        ("FreeSWITCH-Switchname", node.hostname), ("FreeSWITCH-IPv4", node.ipv4),
        ("FreeSWITCH-IPv6", node.ipv6), ("Event-Date-Local", local_stamp(ts_us // 1_000_000)),
        ("Event-Date-GMT", gmt_stamp(ts_us // 1_000_000)), ("Event-Date-Timestamp", str(ts_us)),
        ("Event-Calling-File", where[0]), ("Event-Calling-Function", where[1]),
        ("Event-Calling-Line-Number", where[2]), ("Event-Sequence", str(seq)),
    ]
    return headers


def api_event(node: NodeIdentity, ts_us: int, seq: int, command: str, argument: str) -> FsEvent:
    headers = base_headers("API", node, ts_us, seq, ("switch_loadable_module.c", "switch_api_execute", "3140"))
    headers.append(("API-Command", command))
    if argument:
        headers.append(("API-Command-Argument", argument))
    return FsEvent(headers)


def background_job_event(
    node: NodeIdentity, ts_us: int, seq: int, job_uuid: str, command: str, argument: str, body: str
) -> FsEvent:
    headers = base_headers("BACKGROUND_JOB", node, ts_us, seq, ("mod_event_socket.c", "api_exec", "1580"))
    headers += [("Job-UUID", job_uuid), ("Job-Command", command)]
    if argument:
        headers.append(("Job-Command-Arg", argument))
    headers.append(("Content-Length", str(len(body.encode()))))
    return FsEvent(headers, body)


def agent_status_event(node: NodeIdentity, ts_us: int, seq: int, agent: str, status: str) -> FsEvent:
    headers = base_headers("CUSTOM", node, ts_us, seq, ("mod_callcenter.c", "cc_agent_update", "1043"),
                           subclass="callcenter::info")
    headers += [("CC-Agent", agent), ("CC-Action", "agent-status-change"), ("CC-Agent-Status", status)]
    return FsEvent(headers)


def encode_json(event: FsEvent) -> bytes:
    data: dict[str, HeaderValue] = {}
    for name, value in event.headers:
        data[name] = value
    if event.body is not None:
        data["_body"] = event.body  # type: ignore[assignment]
    return orjson.dumps(data)


def encode_plain(event: FsEvent) -> bytes:
    lines = "".join(f"{name}: {url_encode(plain_value(value))}\n" for name, value in event.headers)
    return (lines + "\n" + (event.body or "")).encode()


class LazyEvent:
    """A node-level event built when first sent, so the node can number it late."""

    __slots__ = ("_build", "_cache", "name", "seq", "subclass", "ts")

    def __init__(self, build: Callable[[int], FsEvent], ts: int, name: str, subclass: str = "") -> None:
        self._build = build
        self._cache: dict[str, bytes] = {}
        self.name = name
        self.subclass = subclass
        self.ts = ts
        self.seq = 0

    def event(self) -> FsEvent:
        return self._build(self.seq)

    def payload(self, fmt: str) -> bytes:
        if fmt not in self._cache:
            self._cache[fmt] = encode_json(self.event()) if fmt == "json" else encode_plain(self.event())
        return self._cache[fmt]


class StaticEvent:
    """An already-built event with the same sending interface as :class:`StreamEvent`."""

    __slots__ = ("_cache", "fs_event", "seq", "ts")

    def __init__(self, fs_event: FsEvent, ts: int, seq: int) -> None:
        self.fs_event = fs_event
        self.ts = ts
        self.seq = seq
        self._cache: dict[str, bytes] = {}

    @property
    def name(self) -> str:
        return self.fs_event.name

    @property
    def subclass(self) -> str:
        return self.fs_event.subclass

    def payload(self, fmt: str) -> bytes:
        if fmt not in self._cache:
            self._cache[fmt] = encode_json(self.fs_event) if fmt == "json" else encode_plain(self.fs_event)
        return self._cache[fmt]

    def event(self) -> FsEvent:
        return self.fs_event
