"""The one error the normalizer raises: input that should map but cannot."""

from __future__ import annotations


class NormalizeError(Exception):
    """``reason`` is a stable kebab-case id (dead-letter reason, metric label); ``detail`` is for humans."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
