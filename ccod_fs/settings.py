"""Settings for every service, validated at startup (pydantic-settings).

Values come from the environment (``CCOD_<SECTION>__<FIELD>``, e.g.
``CCOD_ESL__PASSWORD``) or CLI flags. Secrets have no defaults: a missing ESL
password or webhook secret is a startup error, never a silent ``ClueCon``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ccod_fs.bus.kafka_config import Compression, Scalar, check_client_config
from ccod_fs.contract import topics


class EslSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8021, ge=1, le=65535)
    password: SecretStr = Field(description="mod_event_socket password; required, no default")
    format: Literal["json", "plain"] = "json"
    node: str | None = Field(default=None, description="override the node name (default: FreeSWITCH-Switchname)")
    connect_timeout_s: float = 5.0
    reconnect_max_backoff_s: float = 30.0


class KafkaSettings(BaseModel):
    bootstrap: str = Field(description="host:port[,host:port]")
    events_topic: str = topics.EVENTS.name
    dead_letter_topic: str = topics.DEAD_LETTERS.name
    decisions_topic: str = topics.ROUTING_DECISIONS.name
    client_id: str = "ccod-fs"
    compression: Compression = Field(
        default="auto", description="producers' compression.type; auto = lz4 when kafka-python can read it, else none"
    )
    client_config: dict[str, Scalar] = Field(
        default_factory=dict,
        description="extra librdkafka settings for every client, e.g. security.protocol, sasl.*, ssl.* (JSON)",
    )

    @field_validator("client_config")
    @classmethod
    def _no_reserved_keys(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        return check_client_config(value)


class ClickHouseSettings(BaseModel):
    url: str | None = Field(
        default=None, description="clickhouse://user:pass@host:9000/db for a server; unset = embedded chDB"
    )
    chdb_path: Path = Path("var/chdb")
    database: str = "ccod"


class TenantRules(BaseModel):
    """How the ingest attributes agents and registrations to tenants when FreeSWITCH does not say.

    Calls always carry ``variable_ccod_tenant``; agents normally get theirs from ``ccod_tenant`` in the
    mod_callcenter contact string. These rules are the fallbacks, in this order.
    """

    agent_tenants: dict[str, str] = Field(default_factory=dict, description="agent name (1000@default) -> tenant")
    domain_tenants: dict[str, str] = Field(default_factory=dict, description="SIP/agent domain -> tenant")
    domain_is_tenant: bool = Field(default=False, description="use the agent's domain as its tenant")
    system_tenant: str = Field(default="system", description="tenant of node-level events (heartbeats, jobs)")


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCOD_", env_nested_delimiter="__", extra="ignore")

    esl: EslSettings
    kafka: KafkaSettings
    tenants: TenantRules = TenantRules()
    spool_dir: Path = Path("var/spool")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9464, ge=0, le=65535)
    log_level: str = "INFO"


class SinkSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCOD_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    group_id: str = "ccod-clickhouse-sink"
    batch_max_events: int = Field(default=50_000, ge=1)
    batch_max_age_s: float = Field(default=0.5, gt=0)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9465, ge=0, le=65535)
    log_level: str = "INFO"


class MigrateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCOD_", env_nested_delimiter="__", extra="ignore")

    clickhouse: ClickHouseSettings = ClickHouseSettings()
    log_level: str = "INFO"
