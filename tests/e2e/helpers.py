"""Helpers for end-to-end tests: run ``ccod-fs ingest`` as a real process, read topics back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from kafka import KafkaConsumer, TopicPartition


def start_ingest(*, esl_port: int, password: str, node: str, bootstrap: str, events_topic: str,
                 dead_letter_topic: str, spool_dir: Path, log_path: Path, http_port: int = 0
                 ) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CCOD_ESL__HOST": "127.0.0.1",
        "CCOD_ESL__PORT": str(esl_port),
        "CCOD_ESL__PASSWORD": password,
        "CCOD_ESL__NODE": node,
        "CCOD_ESL__RECONNECT_MAX_BACKOFF_S": "1",
        "CCOD_KAFKA__BOOTSTRAP": bootstrap,
        "CCOD_KAFKA__EVENTS_TOPIC": events_topic,
        "CCOD_KAFKA__DEAD_LETTER_TOPIC": dead_letter_topic,
        "CCOD_SPOOL_DIR": str(spool_dir),
        "CCOD_HTTP_PORT": str(http_port),
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ccod_fs.cli", "--log-json", "ingest"], env=env, stdout=log, stderr=log
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    return proc.wait(timeout)


def read_topic(bootstrap: str, topic: str, expect_at_least: int = 0, timeout: float = 60,
               idle_s: float = 3.0) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every record of ``topic`` as (partition, offset, key, value), reading until idle."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=500)
    parts = consumer.partitions_for_topic(topic) or set()
    deadline = time.monotonic() + timeout
    while not parts and time.monotonic() < deadline:
        time.sleep(0.2)
        parts = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out: list[tuple[int, int, bytes | None, bytes]] = []
    last_new = time.monotonic()
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for recs in batch.values():
            out.extend((r.partition, r.offset, r.key, r.value) for r in recs)
            last_new = time.monotonic()
        if len(out) >= expect_at_least and time.monotonic() - last_new > idle_s:
            break
    consumer.close()
    return out


def event_values(records: list[tuple[int, int, bytes | None, bytes]]) -> list[dict[str, object]]:
    return [orjson.loads(v) for _, _, _, v in records]
