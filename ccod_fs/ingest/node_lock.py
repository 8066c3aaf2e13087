"""One ingest per FreeSWITCH node, enforced by an exclusive lock on the node's spool directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class NodeLock:
    """One ingest per node: an exclusive flock on the node's spool directory.

    Two ingests on one node would publish every event twice; the second refuses to start.
    """

    def __init__(self, spool_dir: Path) -> None:
        spool_dir.mkdir(parents=True, exist_ok=True)
        self.path = spool_dir / "ingest.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise RuntimeError(f"another ingest already holds {self.path}: one ingest per FreeSWITCH node") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
