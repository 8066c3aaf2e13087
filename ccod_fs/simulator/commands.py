"""``api`` command replies of a simulated node, in FreeSWITCH's exact text formats.

Each handler takes the node's :class:`SwitchState` and the argument string and returns
the ``api/response`` body. Commands that change state (``callcenter_config agent set
status``) also return the events FreeSWITCH would fire; the server sends those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ccod_fs.simulator.state import AGENT_FIELDS, QUEUE_FIELDS, SwitchState

MEMBER_FIELDS = (
    "queue", "instance_id", "uuid", "session_uuid", "cid_number", "cid_name", "system_epoch", "joined_epoch",
    "rejoined_epoch", "bridge_epoch", "abandoned_epoch", "base_score", "skill_score", "serving_agent",
    "serving_system", "state", "score",
)
AGENT_STATUSES = ("Logged Out", "Available", "Available (On Demand)", "On Break")


@dataclass(slots=True)
class ApiResult:
    body: str
    status_changes: list[tuple[str, str]] = field(default_factory=list)  # (agent, new status)


def uptime_text(us: int) -> str:
    seconds, micro = divmod(max(us, 0), 1_000_000)
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    return (f"{years} years, {days} days, {hours} hours, {minutes} minutes, {sec} seconds, "
            f"{micro // 1000} milliseconds, {micro % 1000} microseconds")


def status_text(state: SwitchState, now_us: int) -> str:
    with state.lock:
        live, since, peak = len(state.channels), state.sessions_since_start, state.peak_sessions
    return (
        f"UP {uptime_text(now_us - state.started_us)}\n"
        "FreeSWITCH (Version 1.11.3-dev  64bit) is ready\n"
        f"{since} session(s) since startup\n"
        f"{live} session(s) - peak {peak}, last 5min {peak} \n"
        "0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
        "1000 session(s) max\n"
        "min idle cpu 0.00/89.63\n"
        "Current Stack Size/Max 240K/8192K\n"
    )


def _json_rows(rows: list[dict[str, str]]) -> str:
    if not rows:
        return '{"row_count": 0}\n'
    return orjson.dumps({"row_count": len(rows), "rows": rows}).decode()


def _text_rows(fields: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    lines = [",".join(fields)] if rows else []
    lines += [",".join(row.get(k, "") for k in fields) for row in rows]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


def _pipe_table(fields: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    lines = ["|".join(fields)] + ["|".join(row.get(k, "") for k in fields) for row in rows]
    return "\n".join(lines) + "\n+OK\n"


def show(state: SwitchState, args: str) -> ApiResult:
    words = args.split()
    as_json = words[-2:] == ["as", "json"]
    what = words[0] if words else ""
    if what == "channels":
        rows = state.channel_rows()
        fields = tuple(rows[0]) if rows else ("uuid", "direction", "created")
    elif what == "calls":
        rows = state.call_rows()
        fields = tuple(rows[0]) if rows else ("uuid", "direction", "created")
    else:
        return ApiResult("-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels "
                         "[count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls"
                         "|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types"
                         "|tasks|limits|status\n")
    if as_json:
        return ApiResult(_json_rows(rows))
    if not rows:
        return ApiResult("\n0 total.\n")
    return ApiResult(_text_rows(fields, rows))


def callcenter_config(state: SwitchState, args: str) -> ApiResult:
    words = args.split(" ")
    with state.lock:
        agents = sorted(state.agents.values(), key=lambda a: a.name)
        queues = sorted(state.queues.values(), key=lambda q: q.name)
        if words[:2] == ["agent", "list"]:
            return ApiResult(_pipe_table(AGENT_FIELDS, [a.row() for a in agents]))
        if words[:2] == ["queue", "list"] and len(words) == 2:
            return ApiResult(_pipe_table(QUEUE_FIELDS, [q.row() for q in queues]))
        if words[:3] == ["queue", "list", "agents"] and len(words) == 4:
            return ApiResult(_pipe_table(AGENT_FIELDS, [a.row() for a in agents]))
        if words[:3] == ["queue", "list", "members"] and len(words) == 4:
            queue = state.queues.get(words[3])
            rows = list(queue.members.values()) if queue else []
            return ApiResult(_pipe_table(MEMBER_FIELDS, rows))
        if words[:3] == ["queue", "count", "members"] and len(words) == 4:
            queue = state.queues.get(words[3])
            return ApiResult(f"{len(queue.members) if queue else 0}\n")
        if words[:3] == ["agent", "set", "status"] and len(words) >= 5:
            name, status = words[3], " ".join(words[4:]).strip("'\"")
            if name not in state.agents:
                return ApiResult("-ERR Invalid Agent!\n")
            if status not in AGENT_STATUSES:
                return ApiResult("-ERR Invalid Status!\n")
            return ApiResult("+OK\n", [(name, status)])
    return ApiResult("-ERR Unknown Command!\n")


def uuid_kill(state: SwitchState, args: str) -> ApiResult:
    with state.lock:
        known = args.split(" ")[0] in state.channels
    return ApiResult("+OK\n" if known else "-ERR No such channel!\n")


Handler = Callable[[SwitchState, str], ApiResult]
HANDLERS: dict[str, Handler] = {
    "show": show,
    "callcenter_config": callcenter_config,
    "uuid_kill": uuid_kill,
    "hostname": lambda state, args: ApiResult(state.hostname),
    "version": lambda state, args: ApiResult(
        "FreeSWITCH Version 1.11.3-dev+git~20260821T000000Z~cc93a683ca~64bit (git cc93a68 2026-08-21 "
        "00:00:00Z 64bit)\n"),
}


def run_api(state: SwitchState, line: str, now_us: int) -> ApiResult:
    """Execute ``api <line>`` the way mod_commands would answer it."""
    command, _, args = line.strip().partition(" ")
    if command == "status":
        return ApiResult(status_text(state, now_us))
    handler = HANDLERS.get(command)
    if handler is None:
        return ApiResult(f"-ERR {command} Command not found!\n")
    return handler(state, args.strip())
