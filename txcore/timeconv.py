"""Time as the engines count it: instants in microseconds since 1970-01-01T00:00Z,
dates as days since 1970-01-01 (the units of ``ts`` in the outputs, and of every
date the compiled kernel compares)."""
from __future__ import annotations

import datetime as dt

#: The instant every ``ts`` counts from, and the day every day number counts from.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_DAY = EPOCH.date()
#: A day number that never comes: "no member_from", "absent", "open" (int32 max).
NEVER = 2**31 - 1


def utc_micros(instant: dt.datetime) -> int:
    """Microseconds since the epoch of an aware ``instant``, exactly (no float)."""
    delta = instant - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def day_number(day: dt.date | None, none: int = NEVER) -> int:
    """Days since 1970-01-01 of ``day``; ``none`` when there is no day."""
    return none if day is None else (day - EPOCH_DAY).days


def day_of(number: int) -> dt.date:
    """The date of a day number (the inverse of :func:`day_number`)."""
    return EPOCH_DAY + dt.timedelta(days=int(number))
