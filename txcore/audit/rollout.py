"""The card rollout, from the card registry alone: cards issued per unit and bank.

:class:`Roster` is the registry as the programme report sees it: each card's
union unit (one of :data:`txcore.programme.UNITS`, or *unknown unit*), its bank,
and its ``member_from`` (the issue date) and ``member_to``.  From it come the
cards issued per month, unit and bank, the district total against the notice's
milestones, each unit's standing at each milestone, and the members per month
(the denominators of the per-member averages).  Definitions: ``docs/report.md``.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from txcore.programme import MILESTONES, UNITS, unit_lookup

UNKNOWN = len(UNITS)  #: the unit index of "unknown unit"
UNKNOWN_CODE, UNKNOWN_NAME = "unknown", "unknown unit"
#: Why a card (or a priced row) is under "unknown unit".
NO_DATE = -(2**31)  #: an empty date
REASONS = ("card_not_in_registry", "unit_empty", "unit_not_in_programme")


def unit_code(u: int) -> str:
    return UNKNOWN_CODE if u == UNKNOWN else UNITS[u].code


def unit_name(u: int) -> str:
    return UNKNOWN_NAME if u == UNKNOWN else UNITS[u].name


def month_index(d: dt.date) -> int:
    """Months since 1970-01 (the numbering numpy's ``datetime64[M]`` uses)."""
    return (d.year - 1970) * 12 + d.month - 1


def month_label(m: int) -> str:
    return f"{1970 + m // 12:04d}-{m % 12 + 1:02d}"


def month_first(m: int) -> dt.date:
    return dt.date(1970 + m // 12, m % 12 + 1, 1)


def month_last(m: int) -> dt.date:
    return month_first(m + 1) - dt.timedelta(days=1)


def ratio(num: int, den: int) -> int:
    """``num / den`` rounded half up, in integers (0 when ``den`` is 0)."""
    return (2 * num + den) // (2 * den) if den else 0


class Roster:
    """The registry's cards by unit and bank (registry order), with their dates."""

    def __init__(self, registry: pa.Table):
        lookup = unit_lookup()
        index = {text: UNITS.index(u) for text, u in lookup.items()}
        raw = registry.column("unit").to_pylist()
        self.unit = np.array([index.get(t, UNKNOWN) if t else UNKNOWN for t in raw], np.int16)
        # unknown-unit cards: why, and the registry's own text when it names another unit
        self.labels = [""] + sorted({t for t in raw if t and t not in index})
        label_of = {t: i for i, t in enumerate(self.labels)}
        self.unknown_label = np.array([label_of.get(t, 0) if t else 0 for t in raw], np.int32)
        self.unknown_reason = np.where(self.unit != UNKNOWN, -1,
                                       np.where(self.unknown_label == 0, 1, 2)).astype(np.int8)
        issuer = registry.column("issuer").to_pylist()
        self.banks = sorted(set(issuer), key=lambda b: (b not in ("CMB", "CIB"), b))
        bank_of = {b: i for i, b in enumerate(self.banks)}
        self.bank = np.array([bank_of[b] for b in issuer], np.int16)
        self.member_from = _days(registry.column("member_from"))
        self.member_to = _days(registry.column("member_to"))
        self.issued = self.member_from != NO_DATE  # has an issue date
        self.n_units = UNKNOWN + 1

    def __len__(self) -> int:
        return len(self.unit)

    # -- rollout --------------------------------------------------------------------------
    def issue_months(self) -> np.ndarray:
        return (self.member_from[self.issued].astype("datetime64[D]")
                .astype("datetime64[M]").astype(np.int64))

    def issued_by(self, day: dt.date, mask=None) -> int:
        """Cards with ``member_from <= day`` (among ``mask``)."""
        sel = self.issued & (self.member_from <= _day(day))
        return int(np.count_nonzero(sel if mask is None else sel & mask))

    def rollout(self, months: range) -> list[dict]:
        """Per month, bank and unit: cards issued in the month and by its end (every pair
        of the registry, every month of ``months``, so the cumulative series are whole)."""
        mf = self.member_from
        out = []
        for b, bank in enumerate(self.banks):
            for u in range(self.n_units):
                mask = (self.bank == b) & (self.unit == u)
                if not mask.any():
                    continue
                dates = np.sort(mf[mask & self.issued])
                for m in months:
                    first = np.searchsorted(dates, _day(month_first(m)))
                    upto = int(np.searchsorted(dates, _day(month_last(m)), side="right"))
                    out.append({"month": month_label(m), "bank": bank, "unit_code": unit_code(u),
                                "unit": unit_name(u), "issued": upto - int(first),
                                "cumulative": upto})
        return out

    def milestones(self) -> list[dict]:
        """``milestones.csv``: date, target, issued, met (empty where no target)."""
        out = []
        for ms in MILESTONES:
            issued = self.issued_by(ms.date)
            out.append({"date": ms.date.isoformat(), "target": ms.target, "issued": issued,
                        "met": None if ms.target is None else issued >= ms.target})
        return out

    def unit_standing(self) -> list[dict]:
        """Each unit at each milestone: its expected cards and whether it is behind.

        Expected = the milestone's district number (where the notice gives none: the
        district's cards actually issued by then, i.e. the district's pace) times the
        unit's share of the registry's cards, rounded half up.  Behind: issued < expected.
        """
        total = len(self)
        rows = []
        for ms in MILESTONES:
            district = ms.target if ms.target is not None else self.issued_by(ms.date)
            for u in range(self.n_units):
                mask = self.unit == u
                cards = int(np.count_nonzero(mask))
                if not cards:
                    continue
                issued = self.issued_by(ms.date, mask)
                expected = ratio(district * cards, total)
                rows.append({"date": ms.date.isoformat(), "target": ms.target,
                             "unit_code": unit_code(u), "unit": unit_name(u),
                             "bank": "/".join(self.banks[b] for b in np.unique(self.bank[mask])),
                             "registry_cards": cards, "expected": expected, "issued": issued,
                             "short": max(expected - issued, 0), "behind": issued < expected})
        return rows

    def bank_targets(self) -> dict[str, dict[str, int]]:
        """Bank -> milestone date -> its share of the district number (numbered ones)."""
        total = len(self)
        return {bank: {ms.date.isoformat(): ratio(ms.target * int(np.count_nonzero(self.bank == b)),
                                                  total)
                       for ms in MILESTONES if ms.target is not None}
                for b, bank in enumerate(self.banks)}

    # -- members ----------------------------------------------------------------------------
    def members(self, first: dt.date, last: dt.date) -> np.ndarray:
        """Per unit: cards that were member cards on at least one day of ``first..last``."""
        mf, mt = self.member_from, self.member_to
        member = (self.issued & (mf <= _day(last))
                  & ((mt == NO_DATE) | ((mt >= _day(first)) & (mt >= mf))))
        return np.bincount(self.unit[member], minlength=self.n_units)


def _day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def _days(column) -> np.ndarray:
    """A date32 column as days since 1970-01-01, :data:`NO_DATE` where empty."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return arr.cast(pa.int32()).fill_null(NO_DATE).to_numpy(zero_copy_only=False).astype(np.int64)
