"""Dead letters: bad input is kept with its reason, never dropped silently."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field

from ccod_fs.contract.envelope import UtcMs


class DeadLetter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(description="where it failed: esl-decode, normalize, sink-validate, webhook, ...")
    reason: str = Field(description="stable kebab-case error id, e.g. invalid-content-length")
    detail: str = Field(description="human-readable explanation")
    origin: str = Field(description="node or consumer group the input came from")
    received_at: UtcMs
    raw_b64: str = Field(description="the offending input, base64, truncated to 64 KiB")
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def of(cls, *, stage: str, reason: str, detail: str, origin: str, raw: bytes, **where: object) -> DeadLetter:
        return cls(
            stage=stage,
            reason=reason,
            detail=detail[:2000],
            origin=origin,
            received_at=datetime.now(UTC),
            raw_b64=base64.b64encode(raw[:65536]).decode("ascii"),
            **where,  # type: ignore[arg-type]
        )

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)
