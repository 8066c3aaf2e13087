"""The connection's frame parser, served by the native core: socket bytes in, non-event frames out.

``ccod_fs_native.Normalizer.feed`` frames a read and normalizes every ``text/event-json`` frame
in Rust (frames -> decode -> normalize -> serialize, no Python object per header). This adapter
gives :class:`~ccod_fs.esl.connection.EslConnection` the :class:`~ccod_fs.esl.frames.FrameParser`
interface it reads with: canonical events and event errors go straight to the pipeline here,
every other frame (command replies, api responses, plain events, disconnect notices) goes back
to the connection, and framing errors come out of :meth:`take_errors` as before.
"""

from __future__ import annotations

from typing import Any

from ccod_fs.esl.errors import FrameError
from ccod_fs.esl.frames import Frame
from ccod_fs.ingest.pipeline import IngestPipeline


class NativeEventReader:
    """One per ESL connection (the native framer starts clean; the normalizer state carries on)."""

    def __init__(self, native: Any, pipeline: IngestPipeline) -> None:
        self.native = native
        self.pipeline = pipeline
        self.errors: list[FrameError] = []
        native.finish()  # drop a half frame a previous connection may have left (already reported)

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        pipeline = self.pipeline
        published, failed = pipeline.published_event, pipeline.event_failed
        for item in self.native.feed(data):
            kind = type(item)
            if kind is list:
                published(item)
            elif kind is tuple:
                failed(item[0].body, item[1])
            elif isinstance(item, FrameError):
                self.errors.append(item)
            else:
                frames.append(item)
        pipeline.watch_native_sequence(self.native)
        return frames

    def take_errors(self) -> list[FrameError]:
        errors, self.errors = self.errors, []
        return errors

    def finish(self) -> None:
        self.errors.extend(self.native.finish())
