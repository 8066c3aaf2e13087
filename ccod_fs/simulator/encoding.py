"""Value encodings FreeSWITCH uses on the wire: URL encoding (plain) and JSON strings.

``switch_url_encode`` escapes control bytes, non-ASCII bytes and the characters in
``urlunsafe`` below, and nothing else (``,``, ``/``, ``(``, ``'`` stay raw, as the
captures show). Array channel variables are ``ARRAY::a|:b`` in plain and JSON lists
in ``event json``.
"""

from __future__ import annotations

from functools import lru_cache

import orjson

_URL_UNSAFE = set(b'\r\n "#%&+:;<=>?@[\\]^`{|}')
_ENCODE_TABLE = [
    f"%{b:02X}" if (b < 32 or b >= 127 or b in _URL_UNSAFE) else chr(b) for b in range(256)
]
_SAFE_ASCII = frozenset(
    chr(b) for b in range(256) if _ENCODE_TABLE[b] == chr(b)
)


def url_encode(value: str) -> str:
    """FreeSWITCH's ``switch_url_encode`` (byte-wise, uppercase hex)."""
    if _SAFE_ASCII.issuperset(value):
        return value
    table = _ENCODE_TABLE
    return "".join([table[b] for b in value.encode("utf-8")])


@lru_cache(maxsize=65536)
def url_encode_cached(value: str) -> str:
    return url_encode(value)


def json_escape(value: str) -> str:
    """The inside of a JSON string literal (no quotes)."""
    return orjson.dumps(value).decode()[1:-1]


def plain_array(items: list[str]) -> str:
    """The plain (pre-URL-encoding) form of an array variable."""
    return "ARRAY::" + "|:".join(items)
