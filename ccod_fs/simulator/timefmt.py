"""FreeSWITCH's date formats, cached per second because events share seconds.

The captured switch ran in UTC, so ``Event-Date-Local`` equals GMT; the simulator
keeps that (a node's local time zone is not something the ingest may rely on).
"""

from __future__ import annotations

import calendar
import time
from functools import lru_cache

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=4096)
def local_stamp(seconds: int) -> str:
    """``2026-11-25 17:59:08`` (Event-Date-Local, variable_*_stamp)."""
    t = time.gmtime(seconds)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


@lru_cache(maxsize=4096)
def gmt_stamp(seconds: int) -> str:
    """``Wed, 25 Nov 2026 17:59:08 GMT`` (Event-Date-GMT)."""
    t = time.gmtime(seconds)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


@lru_cache(maxsize=4096)
def rfc2822_stamp(seconds: int) -> str:
    """``Wed, 25 Nov 2026 17:59:08 +0000`` (the dialplan's ``strftime`` RFC2822_DATE)."""
    return gmt_stamp(seconds)[:-3] + "+0000"


def parse_stamp(text: str) -> int | None:
    """Seconds since the epoch for any of the three formats above, else None."""
    for fmt in ("%Y-%m-%d %H:%M:%S", "%a, %d %b %Y %H:%M:%S GMT", "%a, %d %b %Y %H:%M:%S +0000"):
        try:
            return calendar.timegm(time.strptime(text, fmt))
        except ValueError:
            continue
    return None
