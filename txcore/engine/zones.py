"""UTC-offset tables of the rules' time zones, for vectorised local dates.

The encoder turns instants into local days (and naive wall times into
instants) with numpy over these tables instead of one ``zoneinfo`` call per
row.  A table is read from ``zoneinfo`` itself — the zone database the
reference engine uses — by probing each day from 1960 to 2060 and bisecting
every change to the second, so both agree.  Rows outside that range, and naive
wall times within two days of a transition (where a wall time can be skipped or
repeated), are left to the reference code path (``txcore.engine.encoder``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

US = 1_000_000
DAY_US = 86_400 * US
_FIRST, _LAST = dt.datetime(1960, 1, 1, tzinfo=dt.timezone.utc), \
    dt.datetime(2060, 1, 1, tzinfo=dt.timezone.utc)
#: Instants (us since 1970) the tables cover, with margin.
LO_US = int((_FIRST - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds() + 3 * 86400) * US
HI_US = int((_LAST - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds() - 3 * 86400) * US
_GUARD_US = 2 * DAY_US


@dataclass(frozen=True)
class OffsetTable:
    starts: np.ndarray   # int64 us: the offset at index k holds from starts[k]
    offsets: np.ndarray  # int64 us

    def offset_at(self, instants: np.ndarray) -> np.ndarray:
        return self.offsets[np.searchsorted(self.starts, instants, side="right") - 1]

    def local_day(self, instants: np.ndarray) -> np.ndarray:
        """Local day (since 1970-01-01) of UTC instants."""
        return ((instants + self.offset_at(instants)) // DAY_US).astype(np.int32)

    def from_wall(self, wall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(instants, ok)`` for naive wall times; ``ok`` is False where a
        transition is within two days (those rows take the reference path)."""
        guess = wall - self.offset_at(wall)
        k = np.searchsorted(self.starts, guess, side="right")
        before = self.starts[np.maximum(k - 1, 0)]
        after = self.starts[np.minimum(k, len(self.starts) - 1)]
        ok = ((k - 1 == 0) | (guess - before >= _GUARD_US)) & \
             ((k == len(self.starts)) | (after - guess >= _GUARD_US))
        return wall - self.offset_at(guess), ok


def _offset_s(zone: ZoneInfo, t: int) -> int:
    return int(dt.datetime.fromtimestamp(t, zone).utcoffset().total_seconds())


@lru_cache(maxsize=None)
def table(name: str) -> OffsetTable:
    zone = ZoneInfo(name)
    t = int(_FIRST.timestamp())
    stop = int(_LAST.timestamp())
    starts, offsets = [np.iinfo(np.int64).min], [_offset_s(zone, t)]
    while t < stop:
        nxt = t + 86400
        off = _offset_s(zone, nxt)
        if off != offsets[-1]:
            lo, hi = t, nxt  # offset changes in (lo, hi]: bisect to the second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset_s(zone, mid) == offsets[-1]:
                    lo = mid
                else:
                    hi = mid
            starts.append(hi * US)
            offsets.append(off)
        t = nxt
    return OffsetTable(np.array(starts, np.int64), np.array(offsets, np.int64) * US)


@lru_cache(maxsize=None)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
