"""Prometheus metrics of the ESL ingest (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.esl_events_in = Counter("ccod_ingest_esl_events_in", "ESL events decoded", ["node"], registry=r)
        self.events_out = Counter("ccod_ingest_events_out", "canonical events published", ["node"], registry=r)
        self.dead_letters = Counter(
            "ccod_ingest_dead_letters", "inputs dead-lettered", ["node", "stage", "reason"], registry=r
        )
        self.reconnects = Counter("ccod_ingest_esl_reconnects", "ESL reconnects", ["node"], registry=r)
        self.sequence_gaps = Counter(
            "ccod_ingest_sequence_gaps", "Event-Sequence regressions or restarts seen", ["node", "kind"], registry=r
        )
        self.spool_depth = Gauge("ccod_ingest_spool_depth", "records spooled, not yet acked by Kafka", registry=r)
        self.kafka_up = Gauge("ccod_ingest_kafka_up", "1 when Kafka acks sends or answers the metadata probe",
                              registry=r)
        self.esl_connected = Gauge("ccod_ingest_esl_connected", "1 while the ESL socket is up", registry=r)
        self.lag_seconds = Gauge(
            "ccod_ingest_lag_seconds", "now minus Event-Date-Timestamp of the last event", registry=r
        )
