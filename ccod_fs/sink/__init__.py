"""ClickHouse sink: pure row derivation (rows.py), the writer (writer.py) and the Kafka service."""
