"""ESL ingest: FreeSWITCH events -> canonical events -> Kafka."""
