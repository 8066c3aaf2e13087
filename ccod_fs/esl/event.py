"""A decoded FreeSWITCH event: the internal, raw form that never leaves the ingest.

Header values are fully URL-decoded strings. Array channel variables
(JSON lists, or plain ``ARRAY::a|:b``) are decoded to ``list[str]`` so that the
same event read as ``event json`` or ``event plain`` compares equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(slots=True)
class EslEvent:
    headers: dict[str, str | list[str]]
    body: str | None = None
    content_type: str = "text/event-json"
    raw_size: int = 0

    @property
    def name(self) -> str:
        value = self.headers.get("Event-Name", "")
        return value if isinstance(value, str) else ""

    @property
    def subclass(self) -> str | None:
        value = self.headers.get("Event-Subclass")
        return value if isinstance(value, str) else None

    def get(self, key: str, default: str | None = None) -> str | None:
        """A header as a single string (lists are joined with '|' as FreeSWITCH's plain form does)."""
        value = self.headers.get(key)
        if value is None:
            return default
        if type(value) is str:
            return value
        if isinstance(value, list):
            return "|".join(str(v) for v in value)
        return json.dumps(value)  # not sent by FreeSWITCH; rendered, never trusted as structure
