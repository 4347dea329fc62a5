"""The run's business date: ``--business-date``, else the latest date in the input file
names, else today in the rule set's zone (see docs/iso8583.md, "Business date").

A minimal module with the agreed name and signature; one rule for the whole program.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from typing import Sequence

_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def dates_in_name(name: str) -> list[dt.date]:
    """Every valid ``YYYYMMDD`` or ``YYYY-MM-DD`` in a file name."""
    found = []
    for m in _DATE_RE.finditer(name):
        text = m.group(0)
        if len(text) not in (8, 10) or (len(text) == 10 and text.count("-") != 2):
            continue
        try:
            found.append(dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
        except ValueError:
            continue
    return found


def resolve_business_date(option: dt.date | None, paths: Sequence[str],
                          zone: zoneinfo.ZoneInfo) -> tuple[dt.date, str]:
    """``(date, where it came from)``: ``"option"``, ``"file name"`` or ``"today"``."""
    if option is not None:
        return option, "option"
    dates = [d for p in paths if p != "-" for d in dates_in_name(Path(p).name)]
    if dates:
        return max(dates), "file name"
    return dt.datetime.now(zone).date(), "today"
