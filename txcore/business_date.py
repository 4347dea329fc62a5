"""The business date of a run, replay or explain (docs/business-date.md).

It is, in this order: the date given by the caller (``--business-date``); else
the latest date written ``YYYYMMDD`` or ``YYYY-MM-DD`` in the input files'
names; else the local date, in the zone of the rule set in force, on which the
command starts.  A row dated more than one day after it is rejected ``bad_ts``
(:mod:`txcore.validate`), so one mis-dated row cannot move the state's
retention window.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import PurePath
from zoneinfo import ZoneInfo

#: A date in a file name: 8 ASCII digits, or YYYY-MM-DD, not part of a longer digit run
#: (so the digits of a card number or a sequence number are never read as a date).
_IN_NAME = re.compile(r"(?<![0-9])(?:([0-9]{4})([0-9]{2})([0-9]{2})"
                      r"|([0-9]{4})-([0-9]{2})-([0-9]{2}))(?![0-9])")

OPTION, FILE_NAME, TODAY = "option", "file name", "today"


def dates_in_name(name: str) -> list[dt.date]:
    """Every valid calendar date written YYYYMMDD or YYYY-MM-DD in ``name``."""
    found = []
    for m in _IN_NAME.finditer(name):
        y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else m.group(4, 5, 6)
        try:
            found.append(dt.date(int(y), int(mo), int(d)))
        except ValueError:
            continue  # 8 digits that are no date (a sequence number, 20241399...)
    return found


def resolve_business_date(option: dt.date | None, paths: Sequence[str],
                          zone: ZoneInfo) -> tuple[dt.date, str]:
    """``(business date, source)``; source is ``"option"``, ``"file name"`` or ``"today"``.

    ``paths``: the inputs as given (``-`` for stdin has no name); only each file's own
    name is searched, not its folder.  ``zone``: the zone of the rule set in force today.
    """
    if option is not None:
        return option, OPTION
    named = [d for p in paths if str(p) != "-" for d in dates_in_name(PurePath(str(p)).name)]
    if named:
        return max(named), FILE_NAME
    return dt.datetime.now(zone).date(), TODAY


def parse_option(text: str) -> dt.date:
    """A ``--business-date`` value: exactly YYYY-MM-DD in ASCII digits; ValueError if not."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise ValueError(f"--business-date must be YYYY-MM-DD, got {text!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--business-date {text!r} is not a calendar date") from None
