"""Typed readers of ESL header values never raise, whatever the switch (or a caller) put in the value."""

from __future__ import annotations

import pytest

from ccod_fs.esl.event import EslEvent
from ccod_fs.ingest.esl_values import epoch_s_as_us, epoch_us, small_int
from ccod_fs.ingest.normalize import NormalizeError, Normalizer

# int() raises on these although str.isdigit() is true (superscripts), or parses non-ASCII digits,
# or refuses more than 4300 digits.
ODD_DIGITS = ["\u00b2\u00b3", "\u0661\u0662\u0663", "1795629548005086\u00b2", "9" * 5000, "", "12a", "-1", " 1"]


@pytest.mark.parametrize("value", ODD_DIGITS)
def test_numeric_readers_return_none_instead_of_raising(value: str) -> None:
    assert epoch_us(value) is None
    assert epoch_s_as_us(value) is None
    assert small_int(value) is None


def test_numeric_readers_on_good_values() -> None:
    assert epoch_us("1795629548005086") == 1795629548005086
    assert epoch_us("0") is None
    assert epoch_s_as_us("1795629548") == 1795629548000000
    assert small_int("8000") == 8000


@pytest.mark.parametrize("value", ODD_DIGITS)
def test_bad_event_timestamp_is_a_dead_letter_not_a_crash(value: str) -> None:
    event = EslEvent({"Event-Name": "HEARTBEAT", "Core-UUID": "c", "Event-Sequence": "1",
                      "Event-Date-Timestamp": value})
    with pytest.raises(NormalizeError) as info:
        Normalizer(node="n").normalize(event)
    assert info.value.reason == "bad-timestamp"
