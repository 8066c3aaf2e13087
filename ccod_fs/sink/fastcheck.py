"""A fast, conservative validator compiled from the contract's pydantic models.

Why: full pydantic validation costs tens of microseconds per event here (most of it in the
contract's per-timestamp Python validator), which caps the sink far below its target. This
module walks the models once and builds plain-Python checks for the subset of JSON our own
producers emit (exact types, canonical UUIDs, ``...Z`` timestamps). It only ever *accepts*
input that the models accept, with the same normalised values; anything else — including
input pydantic would coerce or reject — returns ``None`` and the caller validates with
pydantic, which stays the single source of truth (see tests/sink/test_fastcheck.py).

Two generated checks per event type: ``fast_<Model>`` for a dict holding every field exactly
once (what our serializer always writes: nested models inlined, ``d[key]`` reads, the parsed
dict itself becomes the record, memoised tenant ids and timestamps), and the general
``check_<Model>`` (defaults, extra keys) for any other shape. Both decide alike
(tests/sink/test_fastcheck.py compares them on every mutation).

Output: a *record*, the event as a dict with timestamps as epoch milliseconds (UTC, truncated
to ms like the contract) and UUIDs as canonical strings. The full-shape check returns its input
dict with the timestamps replaced: callers that need the original text read it first.
"""

from __future__ import annotations

import itertools
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import annotated_types
from pydantic import BaseModel

from ccod_fs.contract import envelope as envelope_module
from ccod_fs.contract.events import EVENT_TYPES

Record = dict[str, Any]
Check = Callable[[Any], Record]


class Reject(Exception):
    """Not provably valid on the fast path: let pydantic decide."""


class Unsupported(Exception):
    """A model feature this compiler does not mirror: that model always goes to pydantic."""


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# ASCII digits only: ``\d`` also matches other scripts' digits (int() reads them), which pydantic rejects
_TS = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                 r"(?:\.([0-9]{1,6}))?(?:Z|\+00:00)")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_second_ms_cache: dict[str, int] = {}


def _second_ms(m: re.Match[str]) -> int:
    """Epoch ms of the whole second in a matched timestamp, or Reject for an impossible date/time."""
    try:
        day = date(int(m[1]), int(m[2]), int(m[3])).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        raise Reject from exc
    h, mi, s = int(m[4]), int(m[5]), int(m[6])
    if h > 23 or mi > 59 or s > 59:
        raise Reject
    return day * 86_400_000 + ((h * 60 + mi) * 60 + s) * 1000


_ts_cache: dict[str, int] = {}
_CACHE_MAX = 200_000
_MS_MIN = envelope_module.UTC_MS_MIN_EPOCH_MS
_MS_MAX = envelope_module.UTC_MS_MAX_EPOCH_MS


def ts_ms(value: Any) -> int:
    """Canonical UTC ISO-8601 text -> epoch ms (truncated, like the contract), or Reject (also for
    an instant outside the contract's range, ``UTC_MS_MIN``..``UTC_MS_MAX``).

    Accepted texts are memoised whole: the events of one call repeat their timestamps
    (``occurred_at``, ``joined_at``, ``answered_at`` ...), and a dict hit is ~20x cheaper than
    the regex. The same text always gets the same answer, so the memo cannot change a decision.
    """
    if type(value) is not str:
        raise Reject
    hit = _ts_cache.get(value)
    if hit is not None:
        return hit
    m = _TS.fullmatch(value)
    if m is None:
        raise Reject
    second = value[:19]
    base = _second_ms_cache.get(second)
    if base is None:
        base = _second_ms(m)
        if len(_second_ms_cache) > _CACHE_MAX:
            _second_ms_cache.clear()
        _second_ms_cache[second] = base
    frac = m[7]
    ms = base + int((frac + "00")[:3]) if frac else base
    if not _MS_MIN <= ms <= _MS_MAX:  # outside the contract's (the store's) range: pydantic rejects it
        raise Reject
    if len(_ts_cache) > _CACHE_MAX:
        _ts_cache.clear()
    _ts_cache[value] = ms
    return ms


class _Gen:
    """Source code and constants of the generated checks (straight-line code: no per-field calls)."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = {"Reject": Reject, "Shape": Shape, "_MISSING": _MISSING, "_ts_ms": ts_ms,
                                   "_tsget": _ts_cache.get, "_uuid": _UUID.fullmatch}
        self.models: dict[type[BaseModel], str] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.ns)}"
        self.ns[name] = value
        return name


_MISSING = object()


def _constraint_lines(gen: _Gen, metadata: list[Any]) -> tuple[list[str], bool]:
    """Checks on ``v`` for annotated-types constraints, and whether ``v`` is a contract UtcMs."""
    lines: list[str] = []
    utc_ms = False
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            lines.append(f"if not v >= {gen.const(m.ge)}: raise Reject")
        elif isinstance(m, annotated_types.Le):
            lines.append(f"if not v <= {gen.const(m.le)}: raise Reject")
        elif isinstance(m, annotated_types.Gt):
            lines.append(f"if not v > {gen.const(m.gt)}: raise Reject")
        elif isinstance(m, annotated_types.Lt):
            lines.append(f"if not v < {gen.const(m.lt)}: raise Reject")
        elif isinstance(m, annotated_types.MinLen):
            lines.append(f"if len(v) < {int(m.min_length)}: raise Reject")
        elif isinstance(m, annotated_types.MaxLen):
            lines.append(f"if len(v) > {int(m.max_length)}: raise Reject")
        elif type(m).__name__ == "_PydanticGeneralMetadata" and set(vars(m)) == {"pattern"}:
            rx = gen.const(re.compile(vars(m)["pattern"]).search)
            # Python's '$' also matches before a final newline; leave any newline to pydantic
            lines.append(f"if '\\n' in v or {rx}(v) is None: raise Reject")
        elif getattr(m, "func", None) is envelope_module._to_utc_ms:
            utc_ms = True
        else:
            raise Unsupported(repr(m))
    return lines, utc_ms


def _type_lines(gen: _Gen, tp: Any, metadata: list[Any]) -> tuple[list[str], bool]:
    """Lines that validate and normalise ``v`` in place; returns (lines, accepts_none)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(tp)
        return _type_lines(gen, inner, [*extra, *metadata])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1 or len(args) != 2:
            raise Unsupported(str(tp))
        lines, _ = _type_lines(gen, non_none[0], metadata)
        return lines, True
    constraints, utc_ms = _constraint_lines(gen, metadata)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if not all(type(a) is str for a in allowed) or constraints:
            raise Unsupported(str(tp))
        return [f"if type(v) is not str or v not in {gen.const(frozenset(allowed))}: raise Reject"], False
    if tp is datetime:
        if not utc_ms or constraints:
            raise Unsupported("datetime without the contract's UtcMs validator")
        return ["w = _tsget(v) if type(v) is str else None", "v = _ts_ms(v) if w is None else w"], False
    if tp is uuid.UUID:
        if constraints:
            raise Unsupported("constrained UUID")
        return ["if type(v) is not str or _uuid(v) is None: raise Reject"], False
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if constraints:
            raise Unsupported(str(tp))
        return [f"v = {_compile_model(gen, tp)}(v)"], False
    if tp is str and constraints:
        # tenant ids, queue names...: few distinct values, each checked once (an exact memo)
        memo = gen.const(set())
        body = [f"    {ln}" for ln in constraints]
        return ["if type(v) is not str: raise Reject", f"if v not in {memo}:", *body,
                f"    if len({memo}) < {_CACHE_MAX}: {memo}.add(v)"], False
    if tp in (str, int, bool):
        return [f"if type(v) is not {tp.__name__}: raise Reject", *constraints], False
    raise Unsupported(str(tp))


def _compile_model(gen: _Gen, model: type[BaseModel]) -> str:
    """Generate ``check_<Model>(d) -> record`` into the namespace; returns its name."""
    if model in gen.models:
        return gen.models[model]
    if model.model_config.get("extra") != "forbid":
        raise Unsupported(f"{model.__name__} allows extra keys")
    fname = f"check_{model.__name__}"
    allowed = gen.const(frozenset(model.model_fields))
    body = [f"def {fname}(d):", f"    if type(d) is not dict or not {allowed}.issuperset(d): raise Reject"]
    outs = []
    for i, (name, info) in enumerate(model.model_fields.items()):
        if info.alias or info.default_factory is not None:
            raise Unsupported(f"{model.__name__}.{name}")
        lines, nullable = _type_lines(gen, info.annotation, list(info.metadata))
        body.append(f"    v = d.get({name!r}, _MISSING)")
        if info.is_required():
            body.append("    if v is _MISSING: raise Reject")
        else:
            default = info.default
            if default is not None and type(default) not in (str, int, bool):
                raise Unsupported(f"{model.__name__}.{name} default")
            body.append(f"    if v is _MISSING: v = {gen.const(default)}")
        guard = "elif v is not None:" if nullable else "else:"
        if info.is_required():
            guard = "if v is not None:" if nullable else "if True:"
        body.append(f"    {guard}")
        body += [f"        {ln}" for ln in lines]
        body.append(f"    f{i} = v")
        outs.append(f"{name!r}: f{i}")
    body.append("    return {" + ", ".join(outs) + "}")
    exec(compile("\n".join(body), f"<fastcheck {model.__name__}>", "exec"), gen.ns)
    gen.models[model] = fname
    return fname


class Shape(Exception):
    """Not every field present exactly once (defaults to fill, or an extra key): the general check decides."""


def _unwrap(tp: Any, metadata: list[Any]) -> tuple[Any, list[Any], bool]:
    """(type, constraints, nullable) the way :func:`_type_lines` reads an annotation."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(tp)
        return _unwrap(inner, [*extra, *metadata])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1 or len(args) != 2:
            raise Unsupported(str(tp))
        inner_tp, inner_meta, _ = _unwrap(non_none[0], metadata)
        return inner_tp, inner_meta, True
    return tp, metadata, False


def _fast_fields(gen: _Gen, model: type[BaseModel], dv: str, body: list[str], muts: list[str],
                 names: Iterator[int]) -> None:
    """Lines checking dict ``dv`` in full canonical shape (nested models inlined, no calls)."""
    if model.model_config.get("extra") != "forbid":
        raise Unsupported(f"{model.__name__} allows extra keys")
    body.append(f"    if type({dv}) is not dict: raise Reject")
    body.append(f"    if len({dv}) != {len(model.model_fields)}: raise Shape")
    for name, info in model.model_fields.items():
        if info.alias or info.default_factory is not None:
            raise Unsupported(f"{model.__name__}.{name}")
        tp, metadata, nullable = _unwrap(info.annotation, list(info.metadata))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if nullable or metadata:
                raise Unsupported(f"{model.__name__}.{name}")
            nested = f"n{next(names)}"
            body.append(f"    {nested} = {dv}[{name!r}]")
            _fast_fields(gen, tp, nested, body, muts, names)
            continue
        body.append(f"    v = {dv}[{name!r}]")
        if tp is datetime:
            constraints, utc_ms = _constraint_lines(gen, metadata)
            if not utc_ms or constraints:
                raise Unsupported("datetime without the contract's UtcMs validator")
            lines = ["w = _tsget(v) if type(v) is str else None", "v = _ts_ms(v) if w is None else w"]
        else:
            lines, _ = _type_lines(gen, tp, metadata)
        indent = "        " if nullable else "    "
        if nullable:
            body.append("    if v is not None:")
        body += [f"{indent}{ln}" for ln in lines]
        if tp is datetime:
            tmp = f"t{next(names)}"
            body.append(f"    {tmp} = v")
            muts.append(f"    {dv}[{name!r}] = {tmp}")


def _compile_fast(gen: _Gen, model: type[BaseModel]) -> str:
    """``fast_<Model>(d)``: the record for a dict holding every field (what our producers send).

    Nested models are inlined, keys are read with ``d[key]`` (a missing one raises KeyError) and
    ``len(d)`` replaces the extra-key check (every field present + same count = no extra key).
    The record is ``d`` itself with its timestamps replaced by epoch ms, written only once every
    check passed. Any other shape goes to the general ``check_<Model>`` (defaults, extra keys).
    """
    fname = f"fast_{model.__name__}"
    body = [f"def {fname}(d):"]
    muts: list[str] = []
    _fast_fields(gen, model, "d", body, muts, itertools.count())
    body += muts
    body.append("    return d")
    exec(compile("\n".join(body), f"<fastcheck fast {model.__name__}>", "exec"), gen.ns)
    return fname


def compile_model(model: type[BaseModel], gen: _Gen | None = None) -> Check:
    """A check for one model: exact keys, every field checked, defaults filled in.

    The canonical full shape takes the fast check; anything else the general one.
    """
    gen = gen or _Gen()
    general = _compile_model(gen, model)
    try:
        fast = _compile_fast(gen, model)
    except Unsupported:
        check: Check = gen.ns[general]
        return check
    name = f"checked_{model.__name__}"
    source = (f"def {name}(d):\n    try:\n        return {fast}(d)\n"
              f"    except (KeyError, Shape):\n        return {general}(d)\n")
    exec(compile(source, f"<fastcheck {name}>", "exec"), gen.ns)
    check = gen.ns[name]
    return check


def general_check(model: type[BaseModel]) -> Check:
    """Only the general (defaults-aware) check of a model: lets tests compare both paths."""
    gen = _Gen()
    check: Check = gen.ns[_compile_model(gen, model)]
    return check


def _compile_all() -> dict[str, Check]:
    out: dict[str, Check] = {}
    gen = _Gen()
    for type_name, cls in EVENT_TYPES.items():
        try:
            out[type_name] = compile_model(cls, gen)
        except Unsupported:
            continue  # this event type is always validated by pydantic
    return out


CHECKS: dict[str, Check] = _compile_all()


def fast_record(d: Any) -> Record | None:
    """The normalised record if ``d`` (parsed JSON) is provably valid, else None."""
    if type(d) is not dict:
        return None
    kind = d.get("type")
    check = CHECKS.get(kind) if type(kind) is str else None
    if check is None:
        return None
    try:
        return check(d)
    except Reject:
        return None


def _normalise(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {name: _normalise(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, datetime):
        return (value.astimezone(UTC) - _EPOCH) // _MS
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def record_of(event: BaseModel) -> Record:
    """The same record shape from a validated model (pydantic path, in-process callers)."""
    rec: Record = _normalise(event)
    return rec
