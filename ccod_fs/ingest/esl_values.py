"""Reading typed values out of decoded ESL headers, cheaply and defensively.

Header values come from the switch and, for caller-controlled fields, from the
outside world: every reader here returns ``None`` (or raises ``ValueError`` for
the callers that must dead-letter) instead of trusting the shape. The string
readers (``text``, ``nonempty``, ``checked``) raise ``NormalizeError("bad-header")``
for a JSON number, boolean, object or non-string array: the JSON decoder does not
check value types (that would halve its throughput), and such a value must not
surface as a raw ``TypeError``, be joined into text or pass for an absent header.
No regexes: these run on the ingest's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping

from ccod_fs.ingest.normalize_error import NormalizeError

Headers = Mapping[str, "str | list[str]"]

# Sane bounds for FreeSWITCH epoch microseconds (2001-09-09 .. 2286-11-20).
MIN_US = 1_000_000_000_000_000
MAX_US = 9_999_999_999_999_999
_TENANT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_TENANT_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def json_type(value: object) -> str:
    """The JSON type a decoded header value came as (for dead-letter details)."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return "string"
    if kind is bool:
        return "boolean"
    if kind is int or kind is float:
        return "number"
    if kind is dict:
        return "object"
    if kind is list:
        return "array"
    return kind.__name__


def odd_value(value: object) -> bool:
    """A JSON shape FreeSWITCH never sends: neither a string nor a list of strings (nor null)."""
    if value is None or type(value) is str:
        return False
    return type(value) is not list or not all(type(item) is str for item in value)


def bad_header(key: str, value: object) -> NormalizeError:
    """``bad-header``: a header the normalizer reads came as another JSON type than a string."""
    return NormalizeError("bad-header", f"{key} is a JSON {json_type(value)}, not a string")


def text(headers: Headers, key: str) -> str | None:
    """A header as one string; array variables are joined with ``|`` like FreeSWITCH's plain form."""
    value = headers.get(key)
    if value is None or type(value) is str:
        return value
    if type(value) is list:
        try:
            return "|".join(value)
        except TypeError:  # an item that is not a string
            pass
    raise bad_header(key, value)


def checked(headers: Headers, key: str) -> str | list[str] | None:
    """``headers.get(key)`` for a header that is only tested or compared (``== "inbound"``, truthiness).

    A string or a list of strings comes back as it came (no join: a list is never equal to
    a fixed string), absent as None; any other JSON type is ``bad-header``: without the
    check a ``0`` or ``{}`` would read as an absent header and a ``5`` as a mismatch.
    """
    value = headers.get(key)
    if value is None or type(value) is str:
        return value
    if odd_value(value):
        raise bad_header(key, value)
    return value


def nonempty(headers: Headers, key: str) -> str | None:
    """As :func:`text`, with ``""`` and ``[]`` read as absent."""
    value = headers.get(key)
    if type(value) is str:
        return value or None
    if value is None:
        return None
    if type(value) is list:
        if not value:
            return None
        try:
            return "|".join(value)
        except TypeError:
            pass
    raise bad_header(key, value)


def epoch_us(value: str | list[str] | None) -> int | None:
    """FreeSWITCH µs timestamps (``Caller-Channel-*-Time``): ``'0'``, absent or garbage -> None."""
    if not value or type(value) is not str or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    us = int(value)
    if us < MIN_US or us > MAX_US:
        return None
    return us


def epoch_s_as_us(value: str | list[str] | None) -> int | None:
    """mod_callcenter ``CC-*-Time`` values are whole epoch seconds; 0 means unset."""
    if not value or type(value) is not str or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    us = int(value) * 1_000_000
    if us < MIN_US or us > MAX_US:
        return None
    return us


def small_int(value: str | list[str] | None) -> int | None:
    if not value or type(value) is not str or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def is_tenant_id(value: str) -> bool:
    """Same rule as the contract's ``TenantId`` pattern, without a regex."""
    return (
        0 < len(value) <= 64
        and value[0] in _TENANT_FIRST
        and all(ch in _TENANT_CHARS for ch in value)
    )


def dial_vars(dial_string: str) -> dict[str, str]:
    """Leading ``{a=b,c=d}`` / ``[a=b]`` / ``<a=b>`` variable blocks of a dial or contact string.

    Used to read ``ccod_tenant`` from an agent contact string or an originate
    command; values with escaped commas are rare and simply end early.
    """
    out: dict[str, str] = {}
    rest = dial_string.lstrip()
    while rest and rest[0] in "{[<":
        close = {"{": "}", "[": "]", "<": ">"}[rest[0]]
        end = rest.find(close)
        if end < 0:
            break
        for item in rest[1:end].split(","):
            name, sep, value = item.partition("=")
            if sep:
                out[name.strip()] = value.strip()
        rest = rest[end + 1 :].lstrip()
    return out
