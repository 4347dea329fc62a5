"""The Licheng 2013 notice in data: the district's union units and its card timetable.

Defined once here; the fixtures generator draws members from :data:`UNITS` and
the programme report measures the rollout against :data:`MILESTONES`
(see ``docs/report.md``).  A unit has a short code (``U01`` ...) for tables and
for charts drawn without a CJK font, its Chinese name, the bank that issues its
members' cards, and its weight in the fixtures' membership.
"""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple


class Unit(NamedTuple):
    code: str
    name: str
    issuer: str
    weight: int  # share of members in the fixtures (relative)


class Milestone(NamedTuple):
    date: dt.date
    target: int | None  # district cards issued by ``date``; None: a date without a number
    label: str


#: The 8 sub-district unions, then the system unions, in the notice's order.
UNITS = tuple(Unit(f"U{i + 1:02d}", name, issuer, weight) for i, (name, issuer, weight) in enumerate([
    ("临江街道工会", "CMB", 9), ("鲤中街道工会", "CMB", 9), ("江南街道工会", "CMB", 8),
    ("金龙街道工会", "CMB", 7), ("海滨街道工会", "CIB", 9), ("开元街道工会", "CIB", 8),
    ("浮桥街道工会", "CIB", 7), ("常泰街道工会", "CIB", 6),
    ("教育系统工会", "CIB", 8), ("党群系统工会", "CMB", 2), ("政府系统工会", "CMB", 3),
    ("宣传系统工会", "CMB", 1), ("政法系统工会", "CMB", 2), ("民政系统工会", "CMB", 1),
    ("住建系统工会", "CMB", 2), ("卫生系统工会", "CMB", 4), ("经贸系统工会", "CMB", 3),
    ("商贸集团工会", "CMB", 3), ("公安系统工会", "CMB", 2), ("工商系统工会", "CMB", 1),
    ("高新园区工会", "CMB", 4),
]))

#: The notice's timetable: district totals where it gives a number.
MILESTONES = (
    Milestone(dt.date(2013, 12, 31), 25_000, "medical mutual-aid members"),
    Milestone(dt.date(2014, 3, 1), None, "key enterprises"),
    Milestone(dt.date(2014, 10, 1), None, "enterprises over 50 staff"),
    Milestone(dt.date(2015, 10, 1), 120_000, "all members"),
)

#: From this local date medical-aid subsidies are paid only through the card.
MEDICAL_AID_FROM = dt.date(2013, 10, 1)


def unit_lookup() -> dict[str, Unit]:
    """A registry's ``unit`` text -> :class:`Unit`: by Chinese name or by code."""
    return {**{u.name: u for u in UNITS}, **{u.code: u for u in UNITS}}
