"""Lifecycle of one child service process: free ports, start, readiness wait, stop/kill.

Shared by the Kafka and ClickHouse dev services so both behave the same way under fault tests.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


class ServiceStartError(RuntimeError):
    """A dev service could not be installed, started or reached; the message says why."""


def free_port() -> int:
    """Ask the kernel for a currently free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, for error messages that must explain a failed start."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


class ManagedProcess:
    """One child process in its own session, so signals reach it and nothing outlives the tests."""

    def __init__(self, name: str, argv: Sequence[str], cwd: Path, output: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.cwd = cwd
        self.output = output
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self.kill)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running():
            raise ServiceStartError(f"{self.name} already running (pid {self.pid})")
        with self.output.open("ab") as out:
            self._proc = subprocess.Popen(
                self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                preexec_fn=_die_with_parent() if threading.current_thread() is threading.main_thread() else None,
            )
        log.debug("devservice.spawned", service=self.name, pid=self._proc.pid)

    def wait_ready(self, probe: Callable[[], bool], timeout: float, log_file: Path) -> float:
        """Poll ``probe`` until it is true; fail fast if the process dies. Returns seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if not self.running():
                code = self._proc.returncode if self._proc else None
                raise ServiceStartError(
                    f"{self.name} exited with code {code} before it was ready; "
                    f"tail of {log_file}:\n{tail(log_file)}\n--- output {self.output}:\n{tail(self.output)}"
                )
            try:
                if probe():
                    return time.monotonic() - started
            except Exception as exc:  # any client error just means "not ready yet"
                last_error = exc
            time.sleep(0.25)
        self.kill()
        raise ServiceStartError(
            f"{self.name} not ready after {timeout:.0f}s (last probe error: {last_error!r}); "
            f"tail of {log_file}:\n{tail(log_file)}\n--- output {self.output}:\n{tail(self.output)}"
        )

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps the child."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("devservice.stop_timeout", service=self.name, pid=proc.pid, grace_s=grace)
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group (fault tests, and the atexit safety net)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self._signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGKILL the service when its parent dies.

    atexit does not run when the test or benchmark process is itself killed (SIGTERM, SIGKILL),
    and an orphaned broker would keep its ports, memory and CPU. The kernel signals on the
    death of the *thread* that spawned the child, so it is used only from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)

    return hook
