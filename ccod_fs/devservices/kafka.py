"""Apache Kafka, single node in KRaft mode, from Maven Central jars, on 127.0.0.1.

The jars are resolved by coordinates with Maven once into a cache folder and reused, so a
fresh machine (CI) needs only Java 17 and Maven; the broker runs as a plain JVM process.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import structlog

from ccod_fs.devservices.process import ManagedProcess, ServiceStartError, free_port

log = structlog.get_logger(__name__)

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_BINDING = ("org.slf4j", "slf4j-reload4j", "1.7.36")

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ccod-fs.devservices</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>{b_group}</groupId>
      <artifactId>{b_artifact}</artifactId>
      <version>{b_version}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log_file}
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
"""


def cache_root() -> Path:
    """Where downloaded runtimes live; CCOD_CACHE_DIR overrides ``~/.cache/ccod-fs``."""
    override = os.environ.get("CCOD_CACHE_DIR")
    return Path(override) if override else Path.home() / ".cache" / "ccod-fs"


def ensure_kafka_libs(version: str = KAFKA_VERSION, root: Path | None = None) -> Path:
    """Resolve Kafka's jars with Maven once; later calls return the cached folder at once.

    A file lock serialises concurrent resolvers and the folder is renamed into place only when
    Maven succeeded, so a half-finished download is never mistaken for a complete one.
    """
    base = (root or cache_root()) / f"kafka-{version}"
    libs = base / "libs"
    if (libs / ".complete").exists():
        return libs
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / ".complete").exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceStartError("Maven (mvn) is not on PATH: cannot resolve Kafka jars")
        work = Path(tempfile.mkdtemp(prefix="resolve-", dir=base))
        try:
            (work / "pom.xml").write_text(_POM.format(
                scala=SCALA_VERSION, kafka=version, b_group=SLF4J_BINDING[0],
                b_artifact=SLF4J_BINDING[1], b_version=SLF4J_BINDING[2]))
            started = time.monotonic()
            log.info("kafka.resolving_jars", version=version, into=str(libs))
            result = subprocess.run(
                [mvn, "-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime",
                 f"-DoutputDirectory={work / 'libs'}"],
                cwd=work, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
            )
            if result.returncode != 0:
                raise ServiceStartError(
                    f"mvn dependency:copy-dependencies failed ({result.returncode}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
                )
            (work / "libs" / ".complete").touch()
            if libs.exists():
                shutil.rmtree(libs)
            (work / "libs").rename(libs)
            log.info("kafka.jars_resolved", version=version, jars=len(list(libs.glob("*.jar"))),
                     seconds=round(time.monotonic() - started, 1))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return libs


class KafkaBroker:
    """A single-node KRaft Kafka broker+controller on free loopback ports.

    ``restart()`` reuses the same ports and log dirs, so clients configured with ``bootstrap``
    reconnect to it and previously written data is still there (fault tests rely on this).
    """

    def __init__(self, workdir: Path | None = None, heap: str = "768m", startup_timeout: float = 120.0,
                 num_partitions: int = 4, sasl_users: Mapping[str, str] | None = None) -> None:
        self._own_workdir = workdir is None
        self.sasl_users = dict(sasl_users or {})  # SASL/PLAIN users of a second listener (``sasl_bootstrap``)
        self.sasl_port = free_port() if self.sasl_users else None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ccod-kafka-"))
        self.heap = heap
        self.startup_timeout = startup_timeout
        self.num_partitions = num_partitions
        self.port = free_port()
        self.controller_port = free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self.log_file = self.workdir / "logs" / "server.log"
        self._libs: Path | None = None
        self._proc: ManagedProcess | None = None
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The SASL_PLAINTEXT listener (mechanism PLAIN), as managed Kafka asks clients to authenticate."""
        if self.sasl_port is None:
            raise ValueError("this broker was started without sasl_users")
        return f"127.0.0.1:{self.sasl_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    def start(self) -> KafkaBroker:
        """Resolve jars (once), format storage (once), launch and wait until the admin API answers."""
        started = time.monotonic()
        self._libs = ensure_kafka_libs()
        if not self._formatted:
            self._write_config()
            self._format_storage()
            self._formatted = True
        self._launch()
        log.info("kafka.started", bootstrap=self.bootstrap, pid=self.pid,
                 seconds=round(time.monotonic() - started, 1))
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL); data dir is kept for ``restart()``."""
        if self._proc is not None and self._proc.running():
            self._proc.stop(grace=30.0)
            log.info("kafka.stopped", bootstrap=self.bootstrap)

    def kill(self) -> None:
        """Hard crash, as a fault test wants it: SIGKILL with no flush or controlled shutdown."""
        if self._proc is not None and self._proc.running():
            self._proc.kill()
            log.info("kafka.killed", bootstrap=self.bootstrap)

    def restart(self) -> None:
        """Start again on the same ports and data dir (after ``kill()`` or ``stop()``)."""
        if self.running():
            self.stop()
        self._launch()
        log.info("kafka.restarted", bootstrap=self.bootstrap, pid=self.pid)

    def close(self) -> None:
        """Stop and remove the temp dir this broker created."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def create_topics(self, names: Iterable[str], partitions: int = 4) -> None:
        """Create topics (replication 1) and wait until their leaders are known."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import TopicAlreadyExistsError

        wanted = list(names)
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="ccod-devservices")
        try:
            try:
                admin.create_topics([NewTopic(n, partitions, 1) for n in wanted], timeout_ms=30_000)
            except TopicAlreadyExistsError:
                pass
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                meta = admin.describe_topics(wanted)
                if all(t.get("error_code", 0) == 0 and t["partitions"]
                       and all(p.get("leader_id", -1) >= 0 for p in t["partitions"]) for t in meta):
                    return
                time.sleep(0.2)
            raise ServiceStartError(f"topics {wanted} have no leaders after 30s")
        finally:
            admin.close()

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _classpath(self) -> str:
        assert self._libs is not None
        return str(self._libs / "*")

    def _write_config(self) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": str(self.num_partitions),
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "unclean.leader.election.enable": "false",
            # After a SIGKILL the controller refuses the restarted broker until the old incarnation's
            # session expires (default 9 s); a short session makes kill/restart fault tests quick.
            "broker.session.timeout.ms": "2000",
            "broker.heartbeat.interval.ms": "500",
        }
        if self.sasl_users:
            props["listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            props["advertised.listeners"] += f",SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}"
            props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            props["sasl.enabled.mechanisms"] = "PLAIN"
            users = " ".join(f'user_{name}="{password}"' for name, password in self.sasl_users.items())
            props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};")
        (self.workdir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.workdir / "log4j.properties").write_text(_LOG4J.format(log_file=self.log_file))

    def _java(self, *args: str, heap: str = "256m") -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise ServiceStartError("java is not on PATH: Kafka needs Java 17")
        return [java, f"-Xmx{heap}", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                f"-Dkafka.logs.dir={self.workdir / 'logs'}", "-cp", self._classpath(), *args]

    def _format_storage(self) -> None:
        cluster_id = self._run_tool("kafka.tools.StorageTool", "random-uuid").strip().splitlines()[-1]
        self._run_tool("kafka.tools.StorageTool", "format", "-t", cluster_id,
                       "-c", str(self.workdir / "server.properties"))
        log.debug("kafka.storage_formatted", cluster_id=cluster_id)

    def _run_tool(self, main: str, *args: str) -> str:
        result = subprocess.run(self._java(main, *args), cwd=self.workdir, capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise ServiceStartError(f"{main} {' '.join(args)} failed ({result.returncode}):\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return result.stdout

    def _launch(self) -> None:
        if self._proc is None:
            self._proc = ManagedProcess(
                "kafka", self._java("kafka.Kafka", str(self.workdir / "server.properties"), heap=self.heap),
                cwd=self.workdir, output=self.workdir / "logs" / "stdout.log",
            )
        self._proc.start()
        self._proc.wait_ready(self._admin_ready, self.startup_timeout, self.log_file)

    def _admin_ready(self) -> bool:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="ccod-readiness",
                                 request_timeout_ms=3000, bootstrap_timeout_ms=3000)
        try:
            admin.list_topics()
            return True
        finally:
            admin.close()


