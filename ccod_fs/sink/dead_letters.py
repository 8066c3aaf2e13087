"""A batch's dead letters, produced until Kafka has every one (acks=all), before its offsets are committed."""

from __future__ import annotations

from functools import partial
from typing import Any

from confluent_kafka import Producer

from ccod_fs.contract.deadletter import DeadLetter
from ccod_fs.sink.kafka_client import DLQ_MESSAGE_TIMEOUT_S


class DeadLettersUnconfirmed(Exception):
    """Some dead letters were not acknowledged; the next attempt sends those (and only those) again."""


class PendingDeadLetters:
    """The dead letters of one batch that Kafka has not confirmed yet."""

    def __init__(self, producer: Producer, topic: str, letters: list[DeadLetter]) -> None:
        self.producer = producer
        self.topic = topic
        self.pending = list(letters)

    def send(self) -> None:
        """One attempt: produce what is pending and flush; raises while any letter is unconfirmed.

        The producer's ``message.timeout.ms`` is below the flush timeout, so by the time ``flush``
        returns every letter is confirmed or reported failed: one sent again is not also still
        queued, so our retries add no duplicates.
        """
        confirmed: set[int] = set()
        errors: list[Any] = []

        def report(index: int, error: Any, _message: Any) -> None:
            if error is None:
                confirmed.add(index)
            else:
                errors.append(error)

        for index, letter in enumerate(self.pending):
            while True:
                try:
                    self.producer.produce(self.topic, value=letter.to_json(), key=letter.origin.encode(),
                                          on_delivery=partial(report, index))
                    break
                except BufferError:  # librdkafka's queue is full: let it drain
                    self.producer.poll(0.1)
        self.producer.flush(DLQ_MESSAGE_TIMEOUT_S + 5.0)
        self.pending = [letter for index, letter in enumerate(self.pending) if index not in confirmed]
        if self.pending:
            why = str(errors[0]) if errors else "flush timed out"
            raise DeadLettersUnconfirmed(f"{len(self.pending)} unconfirmed: {why}")
