"""Templates + a render context -> events, as structures (pure) or as wire payload bytes.

The structured form (:func:`render_event`) is the reference; the byte forms
(:func:`render_json`, :func:`render_plain`) precompile each template once into its
literal pieces and a C-level picker of slot values, so a rendering is a slice
assignment and one ``join`` (4x faster than ``%``-formatting a 5 KB string), which
is what lets the simulator feed tens of thousands of events per second.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from ccod_fs.simulator.encoding import json_escape, plain_array, url_encode_cached
from ccod_fs.simulator.model import FsEvent, HeaderValue
from ccod_fs.simulator.template import EventTemplate, Parts, RenderContext, Slot
from ccod_fs.simulator.timefmt import gmt_stamp, local_stamp, rfc2822_stamp

# Slots whose rendered value may need URL encoding in text/event-plain.
_NEEDS_URL_ENCODING = frozenset({"local", "gmt", "rfc2822", "id", "ipv6", "host", "ipv4", "presence"})


def slot_value(slot: Slot, ctx: RenderContext, seq: int, bodylen: int = 0) -> str:
    kind = slot[0]
    if kind == "uuid":
        return ctx.uuids[slot[1]]
    if kind == "us":
        return str(ctx.warp(slot[1]))
    if kind == "s":
        return str(ctx.warp(slot[1]) // 1_000_000)
    if kind == "local":
        return local_stamp(ctx.warp(slot[1]) // 1_000_000)
    if kind == "gmt":
        return gmt_stamp(ctx.warp(slot[1]) // 1_000_000)
    if kind == "rfc2822":
        return rfc2822_stamp(ctx.warp(slot[1]) // 1_000_000)
    if kind == "seq":
        return str(seq)
    if kind == "id":
        return ctx.ids[slot[1]]
    if kind == "core":
        return ctx.node.core_uuid
    if kind == "host":
        return ctx.node.hostname
    if kind == "ipv4":
        return ctx.node.ipv4
    if kind == "ipv6":
        return ctx.node.ipv6
    if kind == "bodylen":
        return str(bodylen)
    if kind in ("count", "presence"):
        return slot[2] if len(slot) > 2 else slot[1]
    raise ValueError(f"unknown slot {slot!r}")


def _join(parts: Parts, ctx: RenderContext, seq: int, bodylen: int = 0) -> str:
    return "".join(p if type(p) is str else slot_value(p, ctx, seq, bodylen) for p in parts)


def render_body(tpl: EventTemplate, ctx: RenderContext) -> str | None:
    return None if tpl.body is None else _join(tpl.body, ctx, 0)


def render_event(
    tpl: EventTemplate, ctx: RenderContext, seq: int, overrides: dict[str, str] | None = None
) -> FsEvent:
    """The event FreeSWITCH would send, as ordered headers and body."""
    if overrides:
        tpl = _with_overrides(tpl, overrides)
    body = render_body(tpl, ctx)
    bodylen = len(body.encode()) if body is not None else 0
    headers: list[tuple[str, HeaderValue]] = []
    for name, value in tpl.headers:
        if isinstance(value, list):
            headers.append((name, [_join(item, ctx, seq, bodylen) for item in value]))
        else:
            headers.append((name, _join(value, ctx, seq, bodylen)))
    return FsEvent(headers, body)


def _with_overrides(tpl: EventTemplate, overrides: dict[str, str]) -> EventTemplate:
    from dataclasses import replace

    def fix(value: Parts | list[Parts]) -> Parts | list[Parts]:
        if isinstance(value, tuple) and len(value) == 1 and value[0] in tpl.dynamic:
            slot = value[0]
            return ((slot[0], slot[1], overrides[slot[0]]),) if slot[0] in overrides else value
        return value

    return replace(tpl, headers=[(name, fix(value)) for name, value in tpl.headers], json_fmt=None,
                   plain_fmt=None)


# -- precompiled byte forms -----------------------------------------------------------------------


_HOLE = object()  # where a slot value goes in a compiled template
Compiled = tuple[list[str], Callable[[list[str]], tuple[str, ...]]]


def _literals(out: list[object]) -> list[str]:
    """Literal text and holes -> [lit, hole, lit, hole, ..., lit] with holes as ``""`` placeholders."""
    pieces: list[str] = []
    run: list[str] = []
    for item in out:
        if item is _HOLE:
            pieces.append("".join(run))
            pieces.append("")
            run = []
        else:
            run.append(item)  # type: ignore[arg-type]
    pieces.append("".join(run))
    return pieces


def _compile_json(tpl: EventTemplate) -> Compiled:
    out: list[object] = ["{"]
    slots: list[Slot] = []

    def emit(parts: Parts) -> None:
        out.append('"')
        for part in parts:
            if type(part) is str:
                out.append(json_escape(part))
            else:
                out.append(_HOLE)
                slots.append(part)
        out.append('"')

    for n, (name, value) in enumerate(tpl.headers):
        out.append(("," if n else "") + '"' + json_escape(name) + '":')
        if isinstance(value, list):
            out.append("[")
            for k, item in enumerate(value):
                if k:
                    out.append(",")
                emit(item)
            out.append("]")
        else:
            emit(value)
    if tpl.body is not None:
        out += [',"_body":"', _HOLE, '"']
        slots.append(("body",))
    out.append("}")
    return _literals(out), _getter(tpl, slots)


def _compile_plain(tpl: EventTemplate) -> Compiled:
    out: list[object] = []
    slots: list[Slot] = []

    def emit(parts: Parts) -> None:
        for part in parts:
            if type(part) is str:
                out.append(url_encode_cached(part))
            else:
                out.append(_HOLE)
                slots.append(part)

    for name, value in tpl.headers:
        out.append(name + ": ")
        if isinstance(value, list):
            # ARRAY::a|:b, URL-encoded as a whole: the separators become %3A%3A and %7C%3A.
            emit(("ARRAY::",))
            for k, item in enumerate(value):
                if k:
                    emit(("|:",))
                emit(item)
        else:
            emit(value)
        out.append("\n")
    out.append("\n")
    if tpl.body is not None:
        out.append(_HOLE)
        slots.append(("body",))
    return _literals(out), _getter(tpl, slots)


def _getter(tpl: EventTemplate, slots: list[Slot]) -> Callable[[list[str]], tuple[str, ...]]:
    """A C-speed picker of this template's slot values out of a context's value list."""
    indices = [tpl.table.idx(slot) for slot in slots]
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        only = indices[0]
        return lambda values: (values[only],)
    return operator.itemgetter(*indices)


def _compute(slot: Slot, ctx: RenderContext, fmt: str) -> str:
    value = slot_value(slot, ctx, 0)
    if fmt == "json":
        return json_escape(value) if slot[0] == "id" else value
    return url_encode_cached(value) if slot[0] in _NEEDS_URL_ENCODING else value


def _context_values(tpl: EventTemplate, ctx: RenderContext, fmt: str) -> list[str]:
    """The context's computed values for every slot of the template's table (grown lazily)."""
    table = tpl.table
    key = (id(table), fmt)
    values = ctx.values.get(key)
    if values is None:
        values = ctx.values[key] = ["", "", ""]
    if len(values) < len(table.slots):
        values.extend(_compute(slot, ctx, fmt) for slot in table.slots[len(values):])
    return values


def _override(tpl: EventTemplate, values: list[str], overrides: dict[str, str], fmt: str) -> None:
    """Per-event values (live queue counts) replace the captured ones for this rendering only."""
    for slot in tpl.dynamic:
        value = overrides.get(slot[0])
        if value is not None:
            values[tpl.table.idx(slot)] = json_escape(value) if fmt == "json" else url_encode_cached(value)


def render_json(
    tpl: EventTemplate, ctx: RenderContext, seq: int, overrides: dict[str, str] | None = None
) -> bytes:
    """The ``text/event-json`` payload (one object, no trailing newline)."""
    if tpl.json_fmt is None:
        tpl.json_fmt = _compile_json(tpl)
    literals, pick = tpl.json_fmt
    values = _context_values(tpl, ctx, "json")
    values[0] = str(seq)
    if tpl.dynamic:
        _override(tpl, values, overrides or {}, "json")
    if tpl.body is not None:
        body = _join(tpl.body, ctx, 0)
        values[1] = json_escape(body)
        values[2] = str(len(body.encode()))
    pieces = literals.copy()
    pieces[1::2] = pick(values)
    return "".join(pieces).encode()


def render_plain(
    tpl: EventTemplate, ctx: RenderContext, seq: int, overrides: dict[str, str] | None = None
) -> bytes:
    """The ``text/event-plain`` payload (URL-encoded values, inner Content-Length + body)."""
    if tpl.plain_fmt is None:
        tpl.plain_fmt = _compile_plain(tpl)
    literals, pick = tpl.plain_fmt
    values = _context_values(tpl, ctx, "plain")
    values[0] = str(seq)
    if tpl.dynamic:
        _override(tpl, values, overrides or {}, "plain")
    if tpl.body is not None:
        body = _join(tpl.body, ctx, 0)
        values[1] = body
        values[2] = str(len(body.encode()))
    pieces = literals.copy()
    pieces[1::2] = pick(values)
    return "".join(pieces).encode()


def plain_value(value: HeaderValue) -> str:
    """How one header value appears (before URL encoding) in text/event-plain."""
    return plain_array(value) if isinstance(value, list) else value
