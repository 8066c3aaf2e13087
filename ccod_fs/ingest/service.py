"""ESL ingest service: composition root and run loop (one per FreeSWITCH node).

Connect -> subscribe -> resync -> read events until the socket drops -> reconnect
with backoff. Events flow reader-greenlet -> pipeline -> durable publisher; the
main greenlet does housekeeping (publisher poll, metrics) and watches the stop flag.
"""

from __future__ import annotations

import signal
from typing import Any

import gevent
import structlog

from ccod_fs.esl.connection import EslConnection
from ccod_fs.ingest.metrics import IngestMetrics
from ccod_fs.ingest.native_reader import NativeEventReader
from ccod_fs.ingest.node_lock import NodeLock
from ccod_fs.ingest.node_normalizer import NodeNormalizer
from ccod_fs.ingest.normalize import NormalizeError, Normalizer
from ccod_fs.ingest.pipeline import IngestPipeline, Publisher
from ccod_fs.ingest.state_store import StateStore
from ccod_fs.ingest.subscriptions import subscription_tokens
from ccod_fs.ops_http import OpsServer
from ccod_fs.settings import IngestSettings

log = structlog.get_logger(__name__)


class IngestService:
    def __init__(self, settings: IngestSettings, publisher: Publisher, *, node: str | None = None) -> None:
        self.settings = settings
        self.node = node or settings.esl.node or f"{settings.esl.host}:{settings.esl.port}"
        self.metrics = IngestMetrics()
        self.publisher = publisher
        tenants = settings.tenants
        self.normalizer = NodeNormalizer(Normalizer(
            node=self.node,
            system_tenant=tenants.system_tenant,
            agent_tenants=tenants.agent_tenants or None,
            domain_tenants=tenants.domain_tenants or None,
            domain_is_tenant=tenants.domain_is_tenant,
        ), native=settings.esl.format == "json")  # plain events are decoded in Python: no native state
        self.pipeline = IngestPipeline(
            normalizer=self.normalizer,
            publisher=publisher,
            node=self.node,
            events_topic=settings.kafka.events_topic,
            dead_letter_topic=settings.kafka.dead_letter_topic,
            metrics=self.metrics,
        )
        self.state = StateStore(settings.spool_dir)
        snapshot = self.state.load()
        if snapshot is not None:
            try:
                self.normalizer.restore(snapshot)
                log.info("ingest.state_restored", node=self.node, path=str(self.state.path))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("ingest.state_restore_failed", node=self.node, error=str(exc))
        self.connection: EslConnection | None = None
        self.stopping = False
        self.connects = 0
        self.log = log.bind(node=self.node)

    # ---- lifecycle ---------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        self.stopping = True

    def _connect(self) -> EslConnection:
        esl = self.settings.esl
        native = self.normalizer.native
        conn = EslConnection(
            esl.host,
            esl.port,
            esl.password.get_secret_value(),
            on_event=self.pipeline.on_event,
            on_error=self.pipeline.on_error,
            on_batch_end=self._after_read,
            parser=NativeEventReader(native, self.pipeline) if native is not None else None,
            timeout=esl.connect_timeout_s,
        )
        conn.connect()
        conn.subscribe(subscription_tokens(), esl.format)
        self.connects += 1
        if self.connects > 1:
            self.metrics.reconnects.labels(self.node).inc()
        self._resync(conn)
        self.metrics.esl_connected.set(1)
        self.log.info("esl.connected", host=esl.host, port=esl.port, format=esl.format, connects=self.connects,
                      normalizer=self.normalizer.engine)
        return conn

    def _after_read(self) -> None:
        """After each socket read: hand acks to the publisher, then let other greenlets run.

        A fast switch keeps the socket readable, so the reader would never block, and
        housekeeping (state snapshots, metrics) and /healthz would starve without the yield.
        """
        self.publisher.poll()
        gevent.sleep(0)

    def _resync(self, conn: EslConnection) -> None:
        """After (re)connecting, align with FreeSWITCH's own view: agents first, then live channels.

        Only differences become events (agent status/state missed while away, legs that ended
        while we were disconnected), so a reconnect never duplicates what was already published.
        """
        for command, resync in (
            ("callcenter_config agent list", self.normalizer.resync_agents),
            ("show channels as json", self.normalizer.resync),
        ):
            try:
                listing = conn.api(command)
            except Exception as exc:
                self.log.warning("esl.resync_failed", command=command, error=str(exc))
                continue
            if listing.startswith("-ERR"):
                self.log.warning("esl.resync_refused", command=command, reply=listing[:200])
                continue
            try:
                items = resync(listing)
            except NormalizeError as exc:
                self.pipeline.dead_letter("resync", exc.reason, exc.detail, listing.encode()[:65536])
                continue
            self.pipeline.publish_all(items)

    def run(self) -> None:
        backoff = 0.2
        while not self.stopping:
            try:
                self.connection = self._connect()
                backoff = 0.2
            except PermissionError:
                raise
            except Exception as exc:
                self.metrics.esl_connected.set(0)
                self.log.warning("esl.connect_failed", error=str(exc), retry_in_s=backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, self.settings.esl.reconnect_max_backoff_s)
                continue
            while not self.stopping and self.connection.connected:
                self._housekeeping()
                gevent.sleep(0.05)
            reason = self.connection.closed_reason or "closed"
            self.metrics.esl_connected.set(0)
            if not self.stopping:
                self.log.warning("esl.disconnected", reason=reason)
            self.connection.close()
        self.publisher.flush(timeout=30)
        self.pipeline.sync_metrics()
        self.save_state()

    def save_state(self) -> None:
        """Snapshot only after the publisher holds every event the normalizer has seen."""
        self.publisher.poll()
        try:
            self.state.save(self.normalizer.state_snapshot())
        except OSError as exc:
            self.log.error("ingest.state_save_failed", error=str(exc))

    def _sleep(self, seconds: float) -> None:
        end = gevent.get_hub().loop.now() + seconds
        while not self.stopping and gevent.get_hub().loop.now() < end:
            self._housekeeping()
            gevent.sleep(0.05)

    def _housekeeping(self) -> None:
        self.publisher.poll()
        if self.state.due():
            self.save_state()
        self.pipeline.sync_metrics()
        self.metrics.lag_seconds.set(self.pipeline.lag_seconds())
        stats = getattr(self.publisher, "stats", None)
        if stats is not None:
            self.metrics.spool_depth.set(getattr(stats, "spooled_unacked", 0))
            self.metrics.kafka_up.set(1 if getattr(stats, "kafka_up", True) else 0)

    def health(self) -> tuple[bool, dict[str, Any]]:
        connected = bool(self.connection and self.connection.connected)
        return connected, {
            "node": self.node,
            "esl_connected": connected,
            "events_in": self.pipeline.events_in,
            "events_out": self.pipeline.events_out,
            "dead_lettered": self.pipeline.dead_lettered,
        }


def run_ingest(settings: IngestSettings) -> None:
    """``ccod-fs ingest``: ESL -> Kafka for one FreeSWITCH node, until SIGTERM/SIGINT."""
    from ccod_fs.ingest.kafka_topics import ensure_topics
    from ccod_fs.ingest.publisher import DurablePublisher

    lock = NodeLock(settings.spool_dir)
    lock.acquire()
    kafka = settings.kafka
    ensure_topics(kafka.bootstrap, [kafka.events_topic, kafka.dead_letter_topic], client_config=kafka.client_config)
    publisher = DurablePublisher(
        bootstrap=kafka.bootstrap, spool_dir=settings.spool_dir, client_id=f"{kafka.client_id}-ingest",
        compression=kafka.compression, client_config=kafka.client_config,
    )
    publisher.start()
    service = IngestService(settings, publisher)
    ops = OpsServer(settings.http_host, settings.http_port, service.metrics.registry, service.health).start()
    gevent.signal_handler(signal.SIGTERM, service.request_stop)
    gevent.signal_handler(signal.SIGINT, service.request_stop)
    log.info("ingest.started", node=service.node, http_port=ops.port, spool_dir=str(settings.spool_dir))
    try:
        service.run()
    finally:
        publisher.close()
        ops.stop()
        lock.release()
        log.info("ingest.stopped", node=service.node, events_in=service.pipeline.events_in)
