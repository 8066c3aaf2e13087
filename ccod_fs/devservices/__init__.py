"""Real backing services (Kafka, ClickHouse) started as plain loopback processes for dev and tests.

There is no Docker engine on these machines, so the project starts its own services: each
class here resolves/installs what it needs, picks free ports on 127.0.0.1, waits for real
readiness and can be killed and restarted on the same ports for fault tests.
"""

from ccod_fs.devservices.clickhouse import ClickHouseServer
from ccod_fs.devservices.kafka import KafkaBroker
from ccod_fs.devservices.process import ServiceStartError

__all__ = ["ClickHouseServer", "KafkaBroker", "ServiceStartError"]
