"""Debian's clickhouse-server (18.16) as a plain loopback process, for the native-protocol path.

The packaged server is old (no DateTime64, LowCardinality, TTL, Map, codecs) but speaks the real
native TCP protocol that clickhouse-driver uses in production. It is installed with apt-get when
missing (CI runs as root on a fresh Debian 12) and run from a generated config in a temp dir,
never through systemd, so tests can kill and restart it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

import structlog

from ccod_fs.devservices.kafka import cache_root
from ccod_fs.devservices.process import ManagedProcess, ServiceStartError, free_port

log = structlog.get_logger(__name__)

_CANDIDATES = ("/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server",
               "/usr/bin/clickhouse", "/usr/sbin/clickhouse")

UserSpec = Mapping[str, Any]


def _find_server() -> list[str] | None:
    for name in ("clickhouse-server", "clickhouse"):
        found = shutil.which(name)
        if found:
            return [found] if name == "clickhouse-server" else [found, "server"]
    for path in _CANDIDATES:
        if os.access(path, os.X_OK):
            return [path] if path.endswith("-server") else [path, "server"]
    return None


def ensure_clickhouse_server() -> list[str]:
    """Return the argv prefix that runs the server, installing Debian's package if it is missing."""
    argv = _find_server()
    if argv:
        return argv
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / "apt.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        argv = _find_server()
        if argv:
            return argv
        apt = shutil.which("apt-get")
        if apt is None:
            raise ServiceStartError("clickhouse-server is not installed and apt-get is not available")
        prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        started = time.monotonic()
        log.info("clickhouse.installing", package="clickhouse-server")
        for cmd in ([*prefix, apt, "update"],
                    [*prefix, apt, "install", "-y", "clickhouse-server", "clickhouse-client"]):
            result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900,
                                    stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise ServiceStartError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        log.info("clickhouse.installed", seconds=round(time.monotonic() - started, 1))
    argv = _find_server()
    if argv is None:
        raise ServiceStartError("clickhouse-server package installed but no server binary found")
    return argv


def to_xml(tag: str, value: Any, indent: str = "  ") -> str:
    """Render nested dicts/lists/scalars as ClickHouse config XML (lists repeat the tag)."""
    if isinstance(value, list | tuple):
        return "".join(to_xml(tag, item, indent) for item in value)
    if isinstance(value, Mapping):
        inner = "".join(to_xml(k, v, indent + "  ") for k, v in value.items())
        return f"{indent}<{tag}>\n{inner}{indent}</{tag}>\n"
    text = "" if value is None else escape(str(value))
    return f"{indent}<{tag}>{text}</{tag}>\n"


def tenant_user(password: str, database: str,
                row_filters: Mapping[str, str] | None = None, profile: str = "default") -> dict[str, Any]:
    """A loopback user confined to one database (``allow_databases``, enforced by 18.16).

    ``row_filters`` ({table: "tenant_id = 'acme'"}) are written in the users.xml
    ``<databases><db><table><filter>`` form. Debian's 18.16 server predates that feature and
    ignores it (tests pin this down), so on this server tenant isolation must come from the
    database boundary or the queries themselves; newer servers apply the filters.
    """
    user: dict[str, Any] = {
        "password": password,
        "networks": {"ip": ["127.0.0.1", "::1"]},
        "profile": profile,
        "quota": "default",
        "allow_databases": {"database": [database]},
    }
    if row_filters:
        user["databases"] = {database: {t: {"filter": f} for t, f in row_filters.items()}}
    return user


class ClickHouseServer:
    """A throwaway clickhouse-server on free loopback ports with its own data/log dirs.

    ``extra_users`` adds users to users.xml next to the password-less loopback-only ``default``
    (e.g. per-tenant users built with :func:`tenant_user`).
    """

    def __init__(self, workdir: Path | None = None, extra_users: Mapping[str, UserSpec] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ccod-clickhouse-"))
        self.extra_users: dict[str, UserSpec] = dict(extra_users or {})
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = free_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()
        self.log_file = self.workdir / "logs" / "server.log"
        self._proc: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def start(self) -> ClickHouseServer:
        """Install if needed, write config, launch and wait until ``SELECT 1`` answers."""
        started = time.monotonic()
        self._argv = ensure_clickhouse_server()
        self._write_config()
        self._launch()
        log.info("clickhouse.started", host=self.host, port=self.port, http_port=self.http_port,
                 pid=self.pid, seconds=round(time.monotonic() - started, 1))
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL); data is kept for ``restart()``."""
        if self._proc is not None and self._proc.running():
            self._proc.stop(grace=30.0)
            log.info("clickhouse.stopped", port=self.port)

    def kill(self) -> None:
        """Hard crash for fault tests (SIGKILL)."""
        if self._proc is not None and self._proc.running():
            self._proc.kill()
            log.info("clickhouse.killed", port=self.port)

    def restart(self) -> None:
        """Start again on the same ports and data dir; users.xml is rewritten from ``extra_users``."""
        if self.running():
            self.stop()
        self._write_config()
        self._launch()
        log.info("clickhouse.restarted", port=self.port, pid=self.pid)

    def close(self) -> None:
        """Stop and remove the temp dir this server created."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self, **kwargs: Any) -> Any:
        """A clickhouse-driver ``Client`` for this server (native protocol)."""
        from clickhouse_driver import Client

        return Client(host=self.host, port=self.port, **kwargs)

    def version(self) -> str:
        return str(self.client().execute("SELECT version()")[0][0])

    def __enter__(self) -> ClickHouseServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _write_config(self) -> None:
        w = self.workdir
        for sub in ("logs", "data", "tmp", "user_files", "format_schemas"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        config = {
            "logger": {"level": "information", "log": str(self.log_file),
                       "errorlog": str(w / "logs" / "server.err.log"), "size": "100M", "count": 2},
            "listen_host": self.host,
            "http_port": self.http_port,
            "tcp_port": self.port,
            "max_connections": 256,
            "keep_alive_timeout": 3,
            "max_concurrent_queries": 100,
            "uncompressed_cache_size": 268435456,
            "mark_cache_size": 268435456,
            "path": f"{w / 'data'}/",
            "tmp_path": f"{w / 'tmp'}/",
            "user_files_path": f"{w / 'user_files'}/",
            "format_schema_path": f"{w / 'format_schemas'}/",
            "users_config": str(w / "users.xml"),
            "include_from": str(w / "metrika.xml"),
            "default_profile": "default",
            "default_database": "default",
            "timezone": "UTC",
            "mlock_executable": "false",
            "builtin_dictionaries_reload_interval": 3600,
            "max_session_timeout": 3600,
            "default_session_timeout": 60,
            # A test server: do not wait 5 s for idle client connections on SIGTERM.
            "shutdown_wait_unfinished": 1,
        }
        users = {
            "profiles": {"default": {"max_memory_usage": 2_000_000_000, "load_balancing": "random"},
                         "readonly": {"readonly": 1}},
            "users": {"default": {"password": "", "networks": {"ip": ["127.0.0.1", "::1"]},
                                  "profile": "default", "quota": "default"},
                      **self.extra_users},
            "quotas": {"default": {"interval": {"duration": 3600, "queries": 0, "errors": 0,
                                                "result_rows": 0, "read_rows": 0, "execution_time": 0}}},
        }
        (w / "metrika.xml").write_text('<?xml version="1.0"?>\n<yandex>\n</yandex>\n')
        (w / "config.xml").write_text('<?xml version="1.0"?>\n' + to_xml("yandex", config, ""))
        (w / "users.xml").write_text('<?xml version="1.0"?>\n' + to_xml("yandex", users, ""))

    def _launch(self) -> None:
        if self._proc is None:
            self._proc = ManagedProcess(
                "clickhouse", [*self._argv, f"--config-file={self.workdir / 'config.xml'}"],
                cwd=self.workdir, output=self.workdir / "logs" / "stdout.log",
            )
        self._proc.start()
        self._proc.wait_ready(self._ping, self.startup_timeout, self.log_file)

    def _ping(self) -> bool:
        # A plain TCP connect first: the driver logs a traceback for every refused connection.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            if s.connect_ex((self.host, self.port)) != 0:
                return False
        client = self.client(connect_timeout=2, send_receive_timeout=5)
        try:
            return bool(client.execute("SELECT 1") == [(1,)])
        finally:
            client.disconnect()
