"""The contract's event models as plain data for the native sink decoder (``ccod_fs_native``).

Walks the pydantic models the way :mod:`ccod_fs.sink.fastcheck` compiles them, so both fast
paths mirror the same contract and nothing is hand-copied into Rust. Per field a 15-tuple:
``(name, kind, nullable, required, default, literals, nested, ge, gt, le, lt, min_len, max_len,
tenant_pattern, ts_range)`` with kind one of str/int/bool/ts/uuid/lit/model and ``ts_range`` the
contract's timestamp range in epoch ms ``(min, max)`` for a ``ts`` field (else None); a build
that predates the range wants 14-tuples and is refused (the Python path decodes). A model using
anything else is left out: its events always go to the Python path.
"""

from __future__ import annotations

import typing
import uuid
from datetime import datetime
from typing import Any

import annotated_types
from pydantic import BaseModel

from ccod_fs.contract import envelope as envelope_module
from ccod_fs.contract.events import EVENT_TYPES
from ccod_fs.sink.fastcheck import Unsupported, _unwrap

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # the one str pattern the native check knows

FieldSpec = tuple[Any, ...]

# every contract timestamp (UtcMs) lies within this range, in epoch ms: what DateTime64(3) holds
TS_RANGE = (envelope_module.UTC_MS_MIN_EPOCH_MS, envelope_module.UTC_MS_MAX_EPOCH_MS)


def _constraints(tp: Any, metadata: list[Any]) -> tuple[dict[str, int | None], bool, bool]:
    """(numeric and length bounds, tenant pattern, contract UtcMs) of one field's metadata."""
    bounds: dict[str, int | None] = dict.fromkeys(("ge", "gt", "le", "lt", "min_len", "max_len"))
    tenant = utc_ms = False
    for m in metadata:
        if isinstance(m, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt):
            key, value = type(m).__name__.lower(), getattr(m, type(m).__name__.lower())
            if tp is not int or type(value) is not int:
                raise Unsupported(repr(m))
            bounds[key] = value
        elif isinstance(m, annotated_types.MinLen | annotated_types.MaxLen):
            if tp is not str:
                raise Unsupported(repr(m))
            key = "min_len" if isinstance(m, annotated_types.MinLen) else "max_len"
            bounds[key] = int(m.min_length if isinstance(m, annotated_types.MinLen) else m.max_length)
        elif type(m).__name__ == "_PydanticGeneralMetadata" and set(vars(m)) == {"pattern"}:
            if tp is not str or vars(m)["pattern"] != TENANT_PATTERN:
                raise Unsupported(repr(m))
            tenant = True
        elif getattr(m, "func", None) is envelope_module._to_utc_ms:
            utc_ms = True
        else:
            raise Unsupported(repr(m))
    return bounds, tenant, utc_ms


def model_spec(model: type[BaseModel]) -> list[FieldSpec]:
    """The fields of one model (extra keys forbidden, like every contract model)."""
    if model.model_config.get("extra") != "forbid":
        raise Unsupported(f"{model.__name__} allows extra keys")
    out: list[FieldSpec] = []
    for name, info in model.model_fields.items():
        if info.alias or info.default_factory is not None:
            raise Unsupported(f"{model.__name__}.{name}")
        tp, metadata, nullable = _unwrap(info.annotation, list(info.metadata))
        bounds, tenant, utc_ms = _constraints(tp, metadata)
        literals: tuple[str, ...] | None = None
        nested: list[FieldSpec] | None = None
        if typing.get_origin(tp) is typing.Literal:
            literals = typing.get_args(tp)
            if not all(type(a) is str for a in literals) or any(bounds.values()) or tenant:
                raise Unsupported(str(tp))
            kind = "lit"
        elif tp is datetime:
            if not utc_ms or any(v is not None for v in bounds.values()):
                raise Unsupported("datetime without the contract's UtcMs validator")
            kind = "ts"
        elif tp is uuid.UUID:
            kind = "uuid"
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            nested = model_spec(tp)
            kind = "model"
        elif tp in (str, int, bool):
            kind = tp.__name__
        else:
            raise Unsupported(str(tp))
        if utc_ms and kind != "ts":
            raise Unsupported(f"{model.__name__}.{name}")
        if kind in ("uuid", "model", "bool", "lit") and (any(v is not None for v in bounds.values()) or tenant):
            raise Unsupported(f"constrained {kind} {model.__name__}.{name}")
        required = info.is_required()
        default = None if required else info.default
        if default is not None and type(default) not in (str, int, bool):
            raise Unsupported(f"{model.__name__}.{name} default")
        out.append((name, kind, nullable, required, default, literals, nested, bounds["ge"], bounds["gt"],
                    bounds["le"], bounds["lt"], bounds["min_len"], bounds["max_len"], tenant,
                    TS_RANGE if kind == "ts" else None))
    return out


def event_specs() -> dict[str, list[FieldSpec]]:
    """{event type: its model's spec} for every event type the native check can mirror."""
    out: dict[str, list[FieldSpec]] = {}
    for type_name, cls in EVENT_TYPES.items():
        try:
            out[type_name] = model_spec(cls)
        except Unsupported:
            continue  # always decided by the Python path
    return out

