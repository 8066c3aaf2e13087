"""Event Socket frames byte-for-byte as FreeSWITCH writes them (see the captures).

Header order differs by frame type and matters to strict parsers: ``auth/request``
and ``command/reply`` have no Content-Length; ``api/response`` and
``text/disconnect-notice`` send Content-Type first; event frames send
Content-Length first.
"""

from __future__ import annotations

AUTH_REQUEST = b"Content-Type: auth/request\n\n"
DISCONNECT_TEXT = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_NOTICE = (
    b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(DISCONNECT_TEXT) + DISCONNECT_TEXT
)
JSON_PREFIX = b"Content-Length: %d\nContent-Type: text/event-json\n\n"
PLAIN_PREFIX = b"Content-Length: %d\nContent-Type: text/event-plain\n\n"


def command_reply(reply_text: str, *extra: tuple[str, str]) -> bytes:
    lines = [f"Content-Type: command/reply\nReply-Text: {reply_text}\n"]
    lines.extend(f"{name}: {value}\n" for name, value in extra)
    return ("".join(lines) + "\n").encode()


def api_response(body: str) -> bytes:
    raw = body.encode()
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw


def event_frame(payload: bytes, fmt: str) -> bytes:
    prefix = JSON_PREFIX if fmt == "json" else PLAIN_PREFIX
    return prefix % len(payload) + payload
