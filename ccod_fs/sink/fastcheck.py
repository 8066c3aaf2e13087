"""A fast, conservative validator compiled from the contract's pydantic models.

Why: full pydantic validation costs tens of microseconds per event here (most of it in the
contract's per-timestamp Python validator), which caps the sink far below its target. This
module walks the models once and builds plain-Python checks for the subset of JSON our own
producers emit (exact types, canonical UUIDs, ``...Z`` timestamps). It only ever *accepts*
input that the models accept, with the same normalised values; anything else — including
input pydantic would coerce or reject — returns ``None`` and the caller validates with
pydantic, which stays the single source of truth (see tests/sink/test_fastcheck.py).

Output: a *record*, the event as a dict with timestamps as epoch milliseconds (UTC, truncated
to ms like the contract) and UUIDs as canonical strings.
"""

from __future__ import annotations

import re
import types
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import annotated_types
from pydantic import BaseModel

from ccod_fs.contract import envelope as envelope_module
from ccod_fs.contract.events import EVENT_TYPES

Record = dict[str, Any]
Check = Callable[[Any], Any]


class Reject(Exception):
    """Not provably valid on the fast path: let pydantic decide."""


class Unsupported(Exception):
    """A model feature this compiler does not mirror: that model always goes to pydantic."""


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TS = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:Z|\+00:00)")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_day_ms: dict[str, int] = {}


def ts_ms(value: Any) -> int:
    """Canonical UTC ISO-8601 text -> epoch ms (truncated), or Reject."""
    if type(value) is not str:
        raise Reject
    m = _TS.fullmatch(value)
    if m is None:
        raise Reject
    day = value[:10]
    base = _day_ms.get(day)
    if base is None:
        try:
            base = (date(int(m[1]), int(m[2]), int(m[3])).toordinal() - _EPOCH_ORDINAL) * 86_400_000
        except ValueError as exc:
            raise Reject from exc
        if len(_day_ms) < 100_000:
            _day_ms[day] = base
    h, mi, s = int(m[4]), int(m[5]), int(m[6])
    if h > 23 or mi > 59 or s > 59:
        raise Reject
    frac = m[7]
    millis = int((frac + "00")[:3]) if frac else 0
    return base + ((h * 60 + mi) * 60 + s) * 1000 + millis


def _check_uuid(value: Any) -> str:
    if type(value) is not str or _UUID.fullmatch(value) is None:
        raise Reject
    return value


def _constraints(metadata: list[Any]) -> tuple[list[Callable[[Any], bool]], bool]:
    """Predicates for annotated-types constraints, and whether the value is a contract UtcMs."""
    preds: list[Callable[[Any], bool]] = []
    utc_ms = False
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            preds.append(lambda v, b=m.ge: v >= b)
        elif isinstance(m, annotated_types.Le):
            preds.append(lambda v, b=m.le: v <= b)
        elif isinstance(m, annotated_types.Gt):
            preds.append(lambda v, b=m.gt: v > b)
        elif isinstance(m, annotated_types.Lt):
            preds.append(lambda v, b=m.lt: v < b)
        elif isinstance(m, annotated_types.MinLen):
            preds.append(lambda v, b=m.min_length: len(v) >= b)
        elif isinstance(m, annotated_types.MaxLen):
            preds.append(lambda v, b=m.max_length: len(v) <= b)
        elif type(m).__name__ == "_PydanticGeneralMetadata" and set(vars(m)) == {"pattern"}:
            rx = re.compile(vars(m)["pattern"])
            # Python's '$' also matches before a final newline; leave any newline to pydantic
            preds.append(lambda v, rx=rx: "\n" not in v and rx.search(v) is not None)
        elif getattr(m, "func", None) is envelope_module._to_utc_ms:
            utc_ms = True
        else:
            raise Unsupported(repr(m))
    return preds, utc_ms


def _compile_type(tp: Any, metadata: list[Any]) -> tuple[Check, bool]:
    """Check for one annotation; returns (check, accepts_none)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(tp)
        return _compile_type(inner, [*extra, *metadata])
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1 or len(args) != 2:
            raise Unsupported(str(tp))
        check, _ = _compile_type(non_none[0], metadata)
        return check, True
    preds, utc_ms = _constraints(metadata)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if not all(type(a) is str for a in allowed):
            raise Unsupported(str(tp))
        allowed_set = frozenset(allowed)

        def check_literal(v: Any) -> Any:
            if type(v) is not str or v not in allowed_set:
                raise Reject
            return v

        return check_literal, False
    if tp is datetime:
        if not utc_ms or preds:
            raise Unsupported("datetime without the contract's UtcMs validator")
        return ts_ms, False
    if tp is uuid.UUID:
        if preds:
            raise Unsupported("constrained UUID")
        return _check_uuid, False
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return compile_model(tp), False
    if tp in (str, int, bool):
        exact = tp

        def check_scalar(v: Any) -> Any:
            if type(v) is not exact:
                raise Reject
            for p in preds:
                if not p(v):
                    raise Reject
            return v

        return check_scalar, False
    raise Unsupported(str(tp))


def compile_model(model: type[BaseModel]) -> Check:
    """A check for one model: exact keys, every field checked, defaults filled in."""
    if model.model_config.get("extra") != "forbid":
        raise Unsupported(f"{model.__name__} allows extra keys")
    fields: list[tuple[str, Check, bool, bool, Any]] = []
    for name, info in model.model_fields.items():
        if info.alias or info.default_factory is not None:
            raise Unsupported(f"{model.__name__}.{name}")
        check, nullable = _compile_type(info.annotation, list(info.metadata))
        required = info.is_required()
        default = None if required else info.default
        if default is not None and not isinstance(default, str | int | bool):
            raise Unsupported(f"{model.__name__}.{name} default")
        fields.append((name, check, nullable, required, default))
    allowed = frozenset(model.model_fields)

    def check_model(d: Any) -> Record:
        if type(d) is not dict or not allowed.issuperset(d):
            raise Reject
        out: Record = {}
        for name, check, nullable, required, default in fields:
            if name in d:
                v = d[name]
                out[name] = None if v is None and nullable else check(v)
            elif required:
                raise Reject
            else:
                out[name] = default
        return out

    return check_model


def _compile_all() -> dict[str, Check]:
    out: dict[str, Check] = {}
    for type_name, cls in EVENT_TYPES.items():
        try:
            out[type_name] = compile_model(cls)
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
